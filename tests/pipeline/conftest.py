"""Spark fixtures: one local[2] session for the whole run, and simulated landing files."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airpath.sensors.output import run_simulation
from airpath.sensors.simulator import SimulationConfig

START = dt.datetime(2026, 5, 4, 7, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.skip("Java 17+ is needed for Spark")
    from airpath.pipeline.session import build_session, spark_settings

    session = build_session(
        spark_settings(app_name="airpath-tests", master="local[2]", shuffle_partitions=2)
    )
    yield session
    session.stop()


def simulate(network_dir: Path, out: Path, minutes: int, seed: int = 1) -> Path:
    """``minutes`` one-minute files of simulated readings; returns the readings folder."""
    cfg = SimulationConfig.create(START, 60.0 * minutes, seed, n_low_cost=4, n_mobile=3)
    run_simulation(network_dir, out, cfg, truth_every_s=60.0 * minutes)
    return out / "readings"


@pytest.fixture(scope="session")
def sim_readings(helsinki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate(helsinki_dir, tmp_path_factory.mktemp("sim"), 12)
