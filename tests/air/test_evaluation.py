"""The whole evaluation on the embedded Helsinki network, and the CLI's bad-input errors."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from airpath.air.evaluation import EvaluationConfig, evaluate
from airpath.cli import main
from airpath.errors import InputError

KEYS = {
    "network",
    "config",
    "simulation",
    "warm_up",
    "scored_times",
    "score_every_min",
    "readings",
    "scores",
    "rmse_reduction_vs_idw_pct",
    "rmse_reduction_vs_prior_idw_pct",
    "incident_detection",
    "exposure_benefit",
    "plots",
    "beijing",
    "targets",
    "runtime_s",
}


@pytest.fixture(scope="module")
def report_dir(helsinki_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluation")
    # Many incidents so that a 2 h run surely has one to follow and plot.
    config = EvaluationConfig.create(hours=2.25, n_trips=4, incidents_per_day=48.0, seed=1)
    messages: list[str] = []
    evaluate(helsinki_dir, out, config, progress=messages.append)
    assert any("simulated day: 100%" in m for m in messages)
    return out


def test_report_has_every_key_and_finite_metrics(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report) == KEYS
    scores = report["scores"]
    assert set(scores) == {
        "ours",
        "prior_only",
        "nearest_sensor",
        "inverse_distance",
        "prior_inverse_distance",
    }
    for per_pollutant in scores.values():
        assert set(per_pollutant) == {"no2", "pm10", "pm25"}
        for per_horizon in per_pollutant.values():
            assert set(per_horizon) == {"0", "15", "30", "60"}
            for m in per_horizon.values():
                assert m["n"] > 0
                assert all(math.isfinite(m[k]) for k in ("rmse_ugm3", "mae_ugm3", "r2"))
    assert report["scored_times"] == 5  # 60..120 min every 15 min: after the 1 h warm-up
    for key in ("rmse_reduction_vs_idw_pct", "rmse_reduction_vs_prior_idw_pct"):
        reduction = report[key]
        assert all(math.isfinite(v) for h in reduction.values() for v in h.values())
    readings = report["readings"]
    assert readings["readings"] == readings["valid"] + sum(
        n for k, n in readings["rejected"].items() if k.startswith("validation:")
    )
    assert readings["valid"] == readings["matched"] + readings["rejected"].get(
        "matching:too_far_from_street", 0
    )
    exposure = report["exposure_benefit"]
    assert exposure["n_trips_routed"] == 4
    assert set(exposure["table"]) == {"truth", "ours", "prior"}
    for per_profile in exposure["table"].values():
        for m in per_profile.values():
            assert math.isfinite(m["median_dose_reduction_pct"])
            assert m["max_extra_distance_pct"] <= 10.0 + 1e-6
    assert report["incident_detection"]["n_incidents"] >= 1
    assert report["beijing"] is None


def test_plots_exist_and_are_listed(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    assert "map_truth_no2.png" in report["plots"]
    assert "incident_timeseries_no2.png" in report["plots"]
    for name in report["plots"]:
        data = (report_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG")
        assert len(data) > 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hours": 1.0},  # nothing left after the warm-up
        {"hours": math.nan},
        {"batch_min": 2.5},
        {"batch_min": 5.0, "score_every_min": 7.0},
        {"n_trips": -1},
        {"n_mobile": -2},
    ],
)
def test_bad_settings_raise_a_named_error(kwargs):
    with pytest.raises(InputError):
        EvaluationConfig.create(**kwargs)


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["evaluate", *argv])
    return code, capsys.readouterr().err.strip()


def test_cli_missing_network(capsys, tmp_path):
    code, err = _run(capsys, "--network", str(tmp_path / "nope"), "--report", str(tmp_path / "r"))
    assert code == 2
    assert err.startswith("airpath: error:")
    assert "\n" not in err


@pytest.mark.parametrize(
    "extra",
    [["--hours", "0.5"], ["--batch", "5 parsecs"], ["--trips", "-3"], ["--start", "yesterday"]],
)
def test_cli_bad_numbers(capsys, helsinki_dir, tmp_path, extra):
    code, err = _run(
        capsys, "--network", str(helsinki_dir), "--report", str(tmp_path / "r"), *extra
    )
    assert code == 2
    assert err.startswith("airpath: error:")
    assert "\n" not in err


def test_cli_beijing_folder_must_exist(capsys, helsinki_dir, tmp_path):
    code, err = _run(
        capsys,
        "--network",
        str(helsinki_dir),
        "--report",
        str(tmp_path / "r"),
        "--beijing",
        str(tmp_path / "missing"),
    )
    assert code == 2
    assert "--beijing" in err


def test_cli_beijing_module_missing_is_one_line(capsys, helsinki_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "airpath.air.beijing", None)  # import fails
    code, err = _run(
        capsys,
        "--network",
        str(helsinki_dir),
        "--report",
        str(tmp_path / "r"),
        "--hours",
        "1.5",
        "--trips",
        "1",
        "--beijing",
        str(tmp_path),
    )
    assert code == 2
    assert "airpath.air.beijing" in err
    assert "\n" not in err
