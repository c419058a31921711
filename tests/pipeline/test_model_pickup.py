"""A running job adopts a newer model from `airpath train`'s registry between batches,
without a restart and without losing what it has learnt."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from airpath.air.training import DiurnalProfile, FittedModel
from airpath.network.store import Network
from airpath.pipeline.artifacts import ModelArtifact, ModelRegistry
from airpath.pipeline.config import StreamConfig
from airpath.pipeline.model import ModelCheckpoints
from airpath.pipeline.stream import start_stream
from airpath.serving import network_key


def _artifact(net: Network, length_m: float, minute: int) -> ModelArtifact:
    t0 = dt.datetime(2026, 5, 3, tzinfo=dt.UTC)
    profile = DiurnalProfile(
        tuple(net.pollutants), np.zeros((len(net.pollutants), 2, 24)),
        np.full((len(net.pollutants), 2, 24), 10), 0.0,
    )  # fmt: skip
    fitted = FittedModel({"length_scale_m": length_m}, profile, {"n_readings": 10.0}, t0, t0)
    created = dt.datetime(2026, 11, 21, 1, minute, tzinfo=dt.UTC)
    return ModelArtifact.create(fitted, network_key(net), created_at=created)


def _wait(run: Any, n_batches: int) -> None:
    deadline = time.monotonic() + 120
    while sum(1 for o in run.handler.outcomes if o.field_version) < n_batches:
        assert run.query.exception() is None, str(run.query.exception())[:1000]
        assert time.monotonic() < deadline, "the job did not process the new file"
        time.sleep(0.2)


def test_newer_model_is_adopted_between_batches(
    spark: Any, helsinki: Network, helsinki_dir: Path, sim_readings: Path, tmp_path: Path
) -> None:
    files = sorted(sim_readings.iterdir())
    landing, registry = tmp_path / "landing", ModelRegistry(tmp_path / "models")
    landing.mkdir()
    registry.save(_artifact(helsinki, 700.0, 0))
    config = StreamConfig(network=helsinki_dir, landing=landing, work=tmp_path / "work",
                          clock="event", trigger_s=0.5, models=tmp_path / "models")  # fmt: skip
    run = start_stream(config, spark=spark)
    try:
        shutil.copy(files[0], landing / files[0].name)
        _wait(run, 1)
        first = run.handler.model
        assert first is not None
        assert first.kriging.params.length_scale_m == 700.0
        learned = first.kriging.smoother.weight["no2"].copy()

        newer = _artifact(helsinki, 1500.0, 5)
        registry.save(newer)
        shutil.copy(files[1], landing / files[1].name)
        _wait(run, 2)
        model = run.handler.model
        assert model is not None
        assert model.adopted_version == newer.version
        assert model.kriging.params.length_scale_m == 1500.0
        # what was learnt before the switch is still there (decayed, plus the new batch)
        kept = learned > 0
        assert (model.kriging.smoother.weight["no2"][kept] > 0).all()
    finally:
        run.stop()
    adoptions = json.loads((config.model_dir / "adoptions.json").read_text())
    assert sorted(adoptions.values()) == sorted({registry.versions()[0], newer.version})
    last = ModelCheckpoints(config.model_dir).load_before(10**9)
    assert last is not None
    assert last[1].adopted_version == newer.version
