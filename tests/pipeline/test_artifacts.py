"""Model artifacts: JSON round trip, atomic saves, corrupt files, ordering, adoption."""

from __future__ import annotations

import copy
import datetime as dt
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from airpath.air.estimate import EdgeSpace
from airpath.air.observations import ObservationBatch
from airpath.air.training import DiurnalProfile, FittedModel
from airpath.errors import PipelineConfigError
from airpath.pipeline.artifacts import ModelArtifact, ModelRegistry, adopt
from airpath.pipeline.model import StreamModel

T0 = dt.datetime(2026, 5, 4, 7, 0, tzinfo=dt.UTC)
VERSION = r"^\d{8}T\d{6}Z-[0-9a-f]{8}$"


def _fitted(length_m: float = 640.0) -> FittedModel:
    level = np.linspace(-0.3, 0.3, 2 * 2 * 24).reshape(2, 2, 24)
    profile = DiurnalProfile(("no2", "pm10"), level, np.arange(96).reshape(2, 2, 24), 2.0)
    return FittedModel(
        {"residual_sd": 0.21, "nugget_sd": 0.33, "length_scale_m": length_m},
        profile,
        {"n_readings": 1234.0, "variogram_rmse": 0.0021, "no2.holdout_rmse_profile": 0.1},
        T0,
        T0 + dt.timedelta(days=2, seconds=-1),
    )


def _artifact(minute: int = 0, length_m: float = 640.0) -> ModelArtifact:
    created = dt.datetime(2026, 11, 21, 0, minute, 5, tzinfo=dt.UTC)
    return ModelArtifact.create(_fitted(length_m), "c0ffee1234abcd56", created_at=created)


def test_json_round_trip_keeps_every_field() -> None:
    a = _artifact()
    assert a.version.startswith("20261121T000005Z-")
    b = ModelArtifact.from_json(a.to_json())
    assert b.to_json() == a.to_json()
    assert (b.version, b.created_at, b.network_key) == (a.version, a.created_at, a.network_key)
    assert (b.data_from, b.data_to) == (a.data_from, a.data_to)
    assert dict(b.kriging) == dict(a.kriging)
    assert dict(b.metrics) == dict(a.metrics)
    np.testing.assert_array_equal(b.profile.level, a.profile.level)
    np.testing.assert_array_equal(b.profile.hours, a.profile.hours)
    assert b.profile("no2", 1.8e9) == a.profile("no2", 1.8e9)
    assert b.params().length_scale_m == 640.0
    # The version hashes the content: another fit, another version.
    assert _artifact(length_m=641.0).version != a.version


def test_save_is_atomic_and_latest_is_the_newest(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    assert reg.latest() is None
    assert reg.versions() == []
    newer, older = _artifact(minute=30), _artifact(minute=10)
    path = reg.save(newer)
    assert (path / "model.json").is_file()
    reg.save(older)
    assert reg.versions() == [older.version, newer.version]
    assert reg.latest_version() == newer.version
    latest = reg.latest()
    assert latest is not None
    assert latest.version == newer.version
    assert reg.get(older.version).to_json() == older.to_json()
    reg.save(newer)  # the same artifact again: a no-op
    names = {p.name for p in (tmp_path / "models").iterdir()}
    assert names == {"LATEST", older.version, newer.version}


def test_a_failed_save_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = ModelRegistry(tmp_path)
    first = _artifact(minute=1)
    reg.save(first)

    def broken_rename(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        reg.save(_artifact(minute=2))
    assert reg.versions() == [first.version]
    assert reg.latest_version() == first.version
    assert {p.name for p in tmp_path.iterdir()} == {"LATEST", first.version}


def test_corrupt_artifacts_raise_one_line_errors(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    a = _artifact()
    reg.save(a)
    model_json = tmp_path / a.version / "model.json"
    cases = {
        "{not json": "corrupt model artifact",
        a.to_json().replace('"format": 1', '"format": 9'): "this airpath reads 1",
        a.to_json().replace('"nugget_sd": 0.33', '"nugget_sd": -1'): "bad kriging",
        a.to_json().replace('"residual_sd"', '"n_neighbours"'): "bad kriging",
        a.to_json().replace('"utc_offset_h"', '"offset"'): "KeyError",
    }
    for text, message in cases.items():
        model_json.write_text(text)
        with pytest.raises(PipelineConfigError, match=message) as info:
            reg.latest()
        assert "\n" not in str(info.value)
        assert str(model_json) in str(info.value)
    (tmp_path / "LATEST").write_text("../../etc/passwd")
    with pytest.raises(PipelineConfigError, match="not a model version"):
        reg.latest()
    (tmp_path / "LATEST").write_text("20991231T000000Z-00000000\n")
    with pytest.raises(PipelineConfigError, match="no model version"):
        reg.latest()
    with pytest.raises(PipelineConfigError, match="not a model version"):
        reg.get("latest")


def _space() -> EdgeSpace:
    xy = np.array([[0.0, 0.0], [40.0, 0.0], [500.0, 0.0], [1500.0, 300.0]])
    return EdgeSpace(xy, {"no2": np.full(4, 20.0), "pm10": np.full(4, 15.0)})


def _learn(model: StreamModel, n_batches: int, first: int = 0) -> None:
    rng = np.random.default_rng(first)
    for k in range(first, first + n_batches):
        t = T0.timestamp() + 300.0 * k
        for p, base in (("no2", 30.0), ("pm10", 18.0)):
            ref = ObservationBatch.create(
                [0, 2], t, p, base * rng.lognormal(0, 0.1, 2), "ref", "reference"
            )
            low = ObservationBatch.create(
                [1, 3], t, p, 1.2 * base + rng.normal(0, 1, 2), "lc-1", "low_cost"
            )
            model.learn(ref)
            model.learn(low)


def test_adopt_keeps_learned_state() -> None:
    model = StreamModel(_space(), (0.0, 15.0, 30.0, 60.0))
    _learn(model, 60)
    k = model.kriging
    before = {
        "weight": copy.deepcopy(k.smoother.weight),
        "sum": copy.deepcopy(k.smoother.weighted_sum),
        "calibration": {key: m.theta.copy() for key, m in model.calibrator.models.items()},
        "forecasters": {p: (fc.models, dict(fc.n_learned)) for p, fc in k.forecasters.items()},
        "weights": {p: dict(fc.models[15.0].weights) for p, fc in k.forecasters.items()},
    }
    assert before["calibration"]
    assert all(n[15.0] > 0 for _, n in before["forecasters"].values())
    t = T0 + dt.timedelta(minutes=300)
    old_plan = model.plan(t, (0.0, 60.0))

    artifact = _artifact()
    params = adopt(model, artifact, network_key="c0ffee1234abcd56")

    assert k.params is params
    assert (params.residual_sd, params.nugget_sd, params.length_scale_m) == (0.21, 0.33, 640.0)
    assert params.time_constant_s == 900.0  # not fitted, kept
    for p in ("no2", "pm10"):
        np.testing.assert_array_equal(k.smoother.weight[p], before["weight"][p])
        np.testing.assert_array_equal(k.smoother.weighted_sum[p], before["sum"][p])
        models, n_learned = before["forecasters"][p]
        assert k.forecasters[p].models is models
        assert k.forecasters[p].n_learned == n_learned
        assert k.forecasters[p].models[15.0].weights == before["weights"][p]
        assert k.forecasters[p].diurnal is not None
    for key, theta in before["calibration"].items():
        np.testing.assert_array_equal(model.calibrator.models[key].theta, theta)
    new_plan = model.plan(t, (0.0, 60.0))
    assert new_plan.pollutants["no2"].length_scale_m == 640.0
    assert old_plan.pollutants["no2"].length_scale_m != 640.0
    # The adopted model still checkpoints (pickle) and learns.
    restored = pickle.loads(pickle.dumps(model))
    assert restored.kriging.params == params
    _learn(restored, 2, first=60)
    assert "diurnal_change" in restored.kriging.forecasters["no2"].models[15.0].weights
    with pytest.raises(PipelineConfigError, match="is for network"):
        adopt(model, artifact, network_key="another")
