"""Files and the CLI: layout, schema, reproducibility, pacing and clean failures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from airpath.air.schema import READING_SCHEMA, Pollutant, Reading, SensorKind, Unit
from airpath.cli import main
from airpath.network.sources import build_from_sources
from airpath.network.store import load_network
from airpath.sensors.clock import FakeClock, parse_duration_s
from airpath.sensors.output import read_truth, run_simulation
from airpath.sensors.simulator import CitySimulator, SimulationConfig
from airpath.sensors.stations import read_stations
from shared import shared_data

START = dt.datetime(2026, 5, 1, 7, 0, tzinfo=dt.UTC)


def _run(net_dir: Path, out: Path, seed: int, **kw: object) -> None:
    cfg = SimulationConfig.create(START, 1800, seed, slice_s=300, n_low_cost=3, n_mobile=2)
    run_simulation(net_dir, out, cfg, truth_every_s=600, **kw)  # type: ignore[arg-type]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_bytes(helsinki_dir: Path, tmp_path: Path) -> None:
    _run(helsinki_dir, tmp_path / "a", 3)
    _run(helsinki_dir, tmp_path / "b", 3)
    _run(helsinki_dir, tmp_path / "c", 4)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["readings/2026-05-01T07-05.jsonl"] != c["readings/2026-05-01T07-05.jsonl"]
    assert a["truth/2026-05-01T07-10.npz"] != c["truth/2026-05-01T07-10.npz"]


def test_layout_and_manifest(helsinki_dir: Path, tmp_path: Path) -> None:
    _run(helsinki_dir, tmp_path, 3)
    names = sorted(p.name for p in (tmp_path / "readings").iterdir())
    assert names == [f"2026-05-01T07-{m:02d}.jsonl" for m in range(0, 30, 5)]
    truths = sorted(p.name for p in (tmp_path / "truth").iterdir())
    assert truths == ["2026-05-01T07-00.npz", "2026-05-01T07-10.npz", "2026-05-01T07-20.npz"]
    t, arrays = read_truth(tmp_path / "truth" / "2026-05-01T07-10.npz")
    assert t == START + dt.timedelta(minutes=10)
    n_edges = load_network(helsinki_dir).n_edges
    assert {k: v.shape for k, v in arrays.items()} == dict.fromkeys(
        ("no2", "pm10", "pm25"), (n_edges,)
    )
    man = json.loads((tmp_path / "simulation.json").read_text())
    assert man["seed"] == 3
    assert man["start"] == "2026-05-01T07:00:00Z"
    assert man["network"]["counts"]["edges"] == n_edges
    kinds = [s["sensor_kind"] for s in man["sensors"]]
    assert kinds.count("low_cost") == 3
    assert kinds.count("mobile") == 2
    assert all(
        "gain" in s and "offset_ugm3" in s for s in man["sensors"] if s["sensor_kind"] == "low_cost"
    )
    assert json.loads((tmp_path / "incidents.json").read_text()) == man["incidents"]
    assert not list(tmp_path.rglob(".*tmp"))


def test_jsonl_readings_parse_back_into_the_schema(helsinki_dir: Path, tmp_path: Path) -> None:
    _run(helsinki_dir, tmp_path, 5)
    rows = [
        json.loads(line)
        for f in sorted((tmp_path / "readings").iterdir())
        for line in f.read_text().splitlines()
    ]
    assert rows
    for row in rows:
        assert list(row) == READING_SCHEMA.names
        assert row["time"].endswith("Z")
        Reading(
            row["sensor_id"], SensorKind(row["sensor_kind"]), row["lat"], row["lon"],
            dt.datetime.fromisoformat(row["time"]), Pollutant(row["pollutant"]), row["value"],
            Unit(row["unit"]), row["speed_mps"], row["heading_deg"],
        )  # fmt: skip
    table = pa.Table.from_pylist(
        [{**r, "time": dt.datetime.fromisoformat(r["time"])} for r in rows], schema=READING_SCHEMA
    )
    assert table.num_rows == len(rows)
    mobile = [r for r in rows if r["sensor_kind"] == "mobile"]
    assert mobile
    assert all(r["speed_mps"] is not None and r["heading_deg"] is not None for r in mobile)


def test_speed_paces_the_replay_on_the_clock(helsinki_dir: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    _run(helsinki_dir, tmp_path, 1, speed=60.0, clock=clock)
    assert sum(clock.sleeps) == pytest.approx(1800 / 60.0)


def test_scheduled_incident_file(helsinki_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "inc.json"
    spec.write_text(
        json.dumps([{"start_offset_min": 5, "duration_min": 20, "factor": 2, "edge": 7}])
    )
    _run(helsinki_dir, tmp_path / "out", 1, incidents_file=spec)
    incs = json.loads((tmp_path / "out" / "incidents.json").read_text())
    assert len(incs) == 1
    assert incs[0]["start"] == "2026-05-01T07:05:00Z"
    assert incs[0]["end"] == "2026-05-01T07:25:00Z"


def test_cli_writes_the_files(
    helsinki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    argv = ["simulate", "--network", str(helsinki_dir), "--out", str(out), "--duration", "10min",
            "--start", "2026-05-01T08:00Z", "--seed", "2", "--slice", "5min"]  # fmt: skip
    assert main(argv) == 0
    assert "2 slices" in capsys.readouterr().out
    assert (out / "readings" / "2026-05-01T08-05.jsonl").exists()
    assert (out / "truth" / "2026-05-01T08-00.npz").exists()


@pytest.mark.parametrize(
    "bad",
    [
        ["--duration", "soon"],
        ["--duration", "0h"],
        ["--duration=-1h"],
        ["--start", "yesterday"],
        ["--slice", "90s"],
        ["--stations", "/nonexistent/stations.json"],
        ["--network", "/nonexistent/network"],
    ],
)
def test_cli_fails_cleanly(
    bad: list[str], helsinki_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "simulate",
        "--network",
        str(helsinki_dir),
        "--out",
        str(tmp_path / "o"),
        "--duration",
        "5min",
    ]
    assert main([*argv, *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("airpath: error:")


def test_duration_strings() -> None:
    assert parse_duration_s("24h") == 86400
    assert parse_duration_s("1h30min") == 5400
    assert parse_duration_s("90s") == 90


@pytest.mark.slow
def test_barcelona_real_stations(tmp_path: Path) -> None:
    stations_file = shared_data("bcn", "stations_realtime_2024-04-21T19.json")
    prebuilt = Path("/tmp/nets/bcn")
    net_dir = prebuilt if (prebuilt / "manifest.json").exists() else tmp_path / "bcn"
    if net_dir != prebuilt:
        build_from_sources([shared_data("bcn")], net_dir)
    net = load_network(net_dir)
    stations = read_stations(stations_file, net)
    assert len(stations) == 7
    poblenou = next(s for s in stations if s.name == "Poblenou")
    assert poblenou.pollutants == ("no2", "pm10")
    cfg = SimulationConfig.create(START, 3600 * 2, 1, slice_s=3600, n_low_cost=5, n_mobile=2)
    sim = CitySimulator(net, cfg, stations=stations)
    pieces = list(sim)
    refs = [r for p in pieces for r in p.readings if r.sensor_kind is SensorKind.REFERENCE]
    assert len(refs) == sum(len(s.pollutants) for s in stations)  # the hour ending 08:00
    assert all(
        np.isfinite(a).all() and (a > 0).all() for p in pieces for a in p.truth_ugm3.values()
    )
