"""The command line: outputs, and one-line errors with non-zero exits."""

from __future__ import annotations

import json

import pytest

from airpath.cli import main


def test_route_prints_and_writes_geojson(helsinki_dir, tmp_path, capsys):
    out = tmp_path / "r.geojson"
    code = main(
        [
            "route",
            "--network",
            str(helsinki_dir),
            "--from",
            "60.178,24.937",
            "--to",
            "60.1655,24.952",
            "--alternatives",
            "2",
            "--geojson",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "least exposure" in text
    assert "µg" in text
    data = json.loads(out.read_text())
    assert data["type"] == "FeatureCollection"
    assert len(data["features"]) >= 2


def test_route_json(helsinki_dir, capsys):
    assert (
        main(
            [
                "route",
                "--network",
                str(helsinki_dir),
                "--from",
                "60.178,24.937",
                "--to",
                "60.1655,24.952",
                "--profile",
                "fastest",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["features"][0]["properties"]["profile"] == "fastest"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "nan,24.9", "--to", "60.1655,24.952"], "not a number"),
        (["--from", "60.178", "--to", "60.1655,24.952"], "LAT,LON"),
        (["--from", "61.0,24.9", "--to", "60.1655,24.952"], "rideable street"),
        (["--from", "60.178,24.937", "--to", "60.178,24.937"], "same place"),
        (
            ["--from", "60.178,24.937", "--to", "60.1655,24.952", "--profile", "x"],
            "unknown profile",
        ),
        (["--from", "60.178,24.937", "--to", "60.1655,24.952", "--depart", "soon"], "ISO 8601"),
    ],
)
def test_route_errors_are_one_line(helsinki_dir, capsys, args, message):
    assert main(["route", "--network", str(helsinki_dir), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "\n" not in err
    assert "Traceback" not in err


def test_build_errors_are_one_line(tmp_path, capsys):
    assert (
        main(["network", "build", str(tmp_path / "nope.osm.pbf"), "--out", str(tmp_path / "n")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("airpath: error:")
    assert "\n" not in err


def test_missing_network(tmp_path, capsys):
    assert main(["route", "--network", str(tmp_path), "--from", "1,1", "--to", "2,2"]) == 2
    assert "not a network directory" in capsys.readouterr().err


def test_demo_runs_on_the_embedded_default(tmp_path, capsys):
    assert main(["demo", "--examples", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("least exposure") >= 1
    assert "dose" in out
    assert main(["demo", "--examples", "--workdir", str(tmp_path)]) == 0  # reuses the built network
