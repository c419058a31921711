"""``airpath train`` on a lake of simulated readings (Spark), and its command line."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airpath.air.estimate import EdgeSpace
from airpath.air.matching import EdgeMatcher, MatchTolerance
from airpath.air.schema import Pollutant
from airpath.air.training import aggregate_readings, fit_model
from airpath.air.units import to_ugm3
from airpath.errors import PipelineConfigError
from airpath.network.store import Network
from airpath.pipeline import train
from airpath.pipeline.artifacts import ModelArtifact, ModelRegistry
from airpath.pipeline.train import add_train_arguments, cmd_train, run_training
from airpath.sensors import fleet
from airpath.sensors.simulator import CitySimulator, SimulationConfig
from airpath.serving.snapshot import network_key

START = dt.datetime(2026, 5, 4, 0, 0, tzinfo=dt.UTC)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Single-threaded OpenBLAS for a while, when NumPy's bundled one is found.

    The truth model's per-tick matrix products thrash with OpenBLAS threads on a busy
    two-core machine: 2 simulated days took 48 s instead of 6 s (measured).
    """
    maps = Path("/proc/self/maps").read_text() if sys.platform == "linux" else ""
    libs = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps)))
    blas = [ctypes.CDLL(lib) for lib in libs]
    blas = [b for b in blas if hasattr(b, "scipy_openblas_set_num_threads64_")]
    before = [b.scipy_openblas_get_num_threads64_() for b in blas]
    for b in blas:
        b.scipy_openblas_set_num_threads64_(1)
    try:
        yield
    finally:
        for b, n in zip(blas, before, strict=True):
            b.scipy_openblas_set_num_threads64_(n)


def write_lake(network: Network, lake: Path, days: float) -> pd.DataFrame:
    """Simulated readings (stations, 4 low-cost sensors, 1 bike), matched, written in the
    stream's lake layout. Fixed sites alone are too few for a variogram: each distance
    bin would hold one pair of sites, and their biases."""
    cfg = SimulationConfig.create(START, days * 86_400, 3, slice_s=300, n_low_cost=4, n_mobile=1)
    with one_blas_thread():
        rows = [r for piece in CitySimulator(network, cfg) for r in piece.readings]
    kinds = [r.sensor_kind.value for r in rows]
    tol = MatchTolerance()
    edge, dist = EdgeMatcher(network).match_points(
        [r.lat for r in rows], [r.lon for r in rows], [tol.for_kind(k) for k in kinds]
    )
    frame = pd.DataFrame(
        {
            "sensor_id": [r.sensor_id for r in rows],
            "sensor_kind": kinds,
            "lat": [r.lat for r in rows],
            "lon": [r.lon for r in rows],
            "pollutant": [r.pollutant.value for r in rows],
            "value": [r.value for r in rows],
            "unit": [r.unit.value for r in rows],
            "value_ugm3": [to_ugm3(r.value, r.unit, Pollutant(r.pollutant)) for r in rows],
            "speed_mps": [r.speed_mps for r in rows],
            "heading_deg": [r.heading_deg for r in rows],
            "edge_id": edge.astype(np.int64),
            "match_m": dist,
            "time": pd.to_datetime([r.time for r in rows], utc=True).as_unit("ms"),
        }
    )
    frame = frame[frame["edge_id"] >= 0].reset_index(drop=True)
    hour_index = (frame["time"] - pd.Timestamp(START)) // pd.Timedelta(hours=1)
    frame["batch_id"] = hour_index.astype(np.int64)
    for batch, part in frame.groupby("batch_id"):
        t = part["time"].iloc[0]
        out = lake / "readings" / f"date={t:%Y-%m-%d}" / f"hour={t:%H}"
        out.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, out / f"part-{int(batch):012d}.parquet")
    return frame


def test_training_job_on_a_simulated_lake(
    spark: Any,
    helsinki_dir: Path,
    helsinki: Network,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet, "MOBILE_PERIOD_S", 30.0)  # not 5 s: keeps the test fast
    lake, models = tmp_path / "lake", tmp_path / "models"
    frame = write_lake(helsinki, lake, days=2)
    said: list[str] = []
    artifact = run_training(
        lake, helsinki_dir, models, spark=spark, utc_offset_h=3.0, progress=said.append
    )
    k, m = artifact.kriging, artifact.metrics
    print(f"\nSpark fit: {dict(k)}\nmetrics: {dict(m)}\n{train.summary_line(artifact)}")
    assert artifact.data_from == frame["time"].min().to_pydatetime()
    assert artifact.data_to == frame["time"].max().to_pydatetime()
    assert m["n_readings"] == len(frame)
    assert m["n_sensors"] == frame["sensor_id"].nunique()
    assert artifact.network_key == network_key(helsinki)
    assert 100.0 <= k["length_scale_m"] <= 10_000.0
    assert 0.01 <= k["residual_sd"] < 1.5
    assert 0.01 <= k["nugget_sd"] < 1.5
    assert m["variogram_pairs"] > 10_000
    assert m["length_scale_at_bound"] == 0.0
    assert m["variogram_pair_fraction"] == 1.0
    assert m["holdout_hours"] > 0
    assert set(artifact.profile.pollutants) == set(helsinki.pollutants)
    assert any("readings from" in s for s in said)
    latest = ModelRegistry(models).latest()
    assert latest is not None
    assert latest.version == artifact.version

    # The Spark aggregation is the in-memory reference's, at scale.
    ref = fit_model(aggregate_readings(frame, EdgeSpace.from_network(helsinki)), utc_offset_h=3.0)
    assert dict(k) == pytest.approx(ref.kriging, rel=1e-5)
    assert dict(m) == pytest.approx(ref.metrics, rel=1e-5, abs=1e-9)
    np.testing.assert_allclose(artifact.profile.level, ref.profile.level, rtol=1e-6, atol=1e-9)

    # --since prunes partitions: a corrupt file before it is never opened.
    bad = lake / "readings" / "date=2026-05-03" / "hour=23"
    bad.mkdir(parents=True)
    (bad / "part-000000000099.parquet").write_bytes(b"not parquet")
    day2 = START + dt.timedelta(days=1)
    # A pair budget below the candidates samples hours (a share of them, by hash).
    later = run_training(lake, helsinki_dir, models, spark=spark, since=day2, max_pairs=30_000)
    assert later.data_from >= day2
    assert later.metrics["n_readings"] == int((frame["time"] >= day2).sum())
    print(f"sampled: {later.metrics['variogram_pair_fraction']:.3f} of hours, fit {later.kriging}")
    assert 0.0 < later.metrics["variogram_pair_fraction"] < 1.0
    assert 0 < later.metrics["variogram_pairs"] < 0.5 * m["variogram_pairs"]
    assert len(ModelRegistry(models).versions()) == 2
    spark.sparkContext.setLogLevel("OFF")  # the failing task's stack trace is expected
    try:
        with pytest.raises(PipelineConfigError, match=r"part-000000000099.parquet: unreadable"):
            run_training(lake, helsinki_dir, models, spark=spark, until=day2)
    finally:
        spark.sparkContext.setLogLevel("WARN")
    # A range without data is a named error.
    with pytest.raises(PipelineConfigError, match=r"no readings in .* between 2026-05-10"):
        run_training(lake, helsinki_dir, models, spark=spark, since=START + dt.timedelta(days=6))


def test_cli_arguments_and_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(
        [
            "--lake",
            "L",
            "--network",
            "N",
            "--out",
            str(tmp_path),
            "--since",
            "2026-05-04",
            "--until",
            "2026-05-06T12:00+02:00",
            "--utc-offset",
            "2",
        ]
    )
    assert args.master == "local[2]"
    seen: dict[str, Any] = {}
    artifact = ModelArtifact.from_json(_ARTIFACT_JSON)

    def fake_run(*a: Any, **kw: Any) -> ModelArtifact:
        seen.update(kw, positional=a)
        return artifact

    monkeypatch.setattr(train, "run_training", fake_run)
    assert cmd_train(args) == 0
    assert seen["since"] == START
    assert seen["until"] == dt.datetime(2026, 5, 6, 10, 0, tzinfo=dt.UTC)
    assert seen["utc_offset_h"] == 2.0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"model {artifact.version}: 2026-05-04T00:00Z–2026-05-05T23:59Z")
    assert "length scale 640 m" in line
    assert "holdout RMSE 0.100 vs 0.200" in line
    with pytest.raises(PipelineConfigError, match="not an ISO 8601 time"):
        train.parse_time("yesterday")
    monkeypatch.undo()
    with pytest.raises(PipelineConfigError, match="is not before"):
        run_training("L", "N", tmp_path, since=START, until=START)
    with pytest.raises(PipelineConfigError, match="UTC offset"):
        run_training("L", "N", tmp_path, utc_offset_h=20.0)


_ARTIFACT_JSON = (
    '{"format": 1, "version": "20261121T000005Z-0123abcd", "created_at": "2026-11-21T00:00:05Z",'
    ' "network_key": "k", "data_from": "2026-05-04T00:00:00Z", "data_to": "2026-05-05T23:59:00Z",'
    ' "kriging": {"length_scale_m": 640.0, "nugget_sd": 0.3, "residual_sd": 0.2},'
    ' "diurnal": {"utc_offset_h": 0.0, "pollutants": {}},'
    ' "metrics": {"n_readings": 10, "n_sensors": 2, "variogram_rmse": 0.001,'
    ' "holdout_rmse_profile": 0.1, "holdout_rmse_mean": 0.2}}'
)
