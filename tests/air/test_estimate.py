"""Observation batches, temporal smoothing against a batch oracle, staleness, accuracy."""

from __future__ import annotations

import datetime as dt
import doctest
import math

import numpy as np
import pandas as pd
import pytest

import airpath.air.calibration
import airpath.air.drift
import airpath.air.estimate
import airpath.air.kriging
import airpath.air.network_calibration
import airpath.air.observations
from airpath.air.estimate import (
    EdgeSmoother,
    EdgeSpace,
    InverseDistance,
    NearestSensor,
    lognormal_std,
)
from airpath.air.kriging import KrigingParams, ResidualKriging
from airpath.air.observations import ObservationBatch, ObservationError
from airpath.network.store import Network

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "module",
    [
        airpath.air.observations,
        airpath.air.estimate,
        airpath.air.kriging,
        airpath.air.calibration,
        airpath.air.network_calibration,
        airpath.air.drift,
    ],
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
    assert result.attempted > 0


def test_batch_from_records_and_frame_agree() -> None:
    times = [T0, T0 + dt.timedelta(minutes=5)]
    records = [
        {
            "edge_id": 5,
            "time": times[0],
            "pollutant": "no2",
            "value_ugm3": 30.0,
            "sensor_id": "a",
            "sensor_kind": "reference",
        },
        {
            "edge_id": 9,
            "time": times[1],
            "pollutant": "pm25",
            "value_ugm3": 7.5,
            "sensor_id": "b",
            "sensor_kind": "low_cost",
        },
    ]
    a = ObservationBatch.from_records(records)
    b = ObservationBatch.from_frame(pd.DataFrame(records))
    for col in ("edge_id", "time_s", "pollutant", "value_ugm3", "sensor_id", "sensor_kind"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert a.time_s.tolist() == [T0.timestamp(), T0.timestamp() + 300.0]
    assert len(ObservationBatch.from_records([])) == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [("value_ugm3", -1.0), ("value_ugm3", math.nan), ("edge_id", -3), ("sensor_kind", "satellite")],
)
def test_batch_rejects_bad_rows(column: str, value: object) -> None:
    row = {
        "edge_id": 1,
        "time": T0,
        "pollutant": "no2",
        "value_ugm3": 1.0,
        "sensor_id": "a",
        "sensor_kind": "reference",
        column: value,
    }
    with pytest.raises(ObservationError):
        ObservationBatch.from_records([row])


def test_naive_times_are_rejected() -> None:
    row = {
        "edge_id": 1,
        "time": dt.datetime(2024, 1, 1),
        "pollutant": "no2",
        "value_ugm3": 1.0,
        "sensor_id": "a",
        "sensor_kind": "reference",
    }
    with pytest.raises(ObservationError):
        ObservationBatch.from_records([row])


def test_smoother_equals_batch_sums_after_every_batch() -> None:
    rng = np.random.default_rng(7)
    n, tau = 20, 900.0
    space = EdgeSpace(rng.uniform(0, 1000, (n, 2)), {"no2": rng.uniform(10, 40, n)})
    smoother = EdgeSmoother(space, tau)
    seen: list[ObservationBatch] = []
    for k in range(15):
        m = int(rng.integers(0, 6))
        # Out-of-order arrivals: times jitter back up to 10 min behind the batch clock.
        t = T0.timestamp() + 300.0 * k - rng.uniform(0, 600, m)
        b = ObservationBatch.create(
            rng.integers(0, n, m), t, "no2", rng.uniform(5, 60, m), "s", "reference"
        )
        sd = rng.uniform(0.0, 0.3, m)
        smoother.learn(b, bias_sd=sd)
        seen.append(b.with_values(b.value_ugm3, sd))
        edges = np.concatenate([s.edge_id for s in seen])
        if len(edges) == 0:
            continue
        times = np.concatenate([s.time_s for s in seen])
        r = np.log(np.concatenate([s.value_ugm3 for s in seen]) / space.prior_ugm3["no2"][edges])
        sds = np.concatenate([s.bias_sd for s in seen if s.bias_sd is not None])
        w = np.exp(-(smoother.state_time_s - times) / tau)
        np.testing.assert_allclose(smoother.weight["no2"], np.bincount(edges, w, n), rtol=1e-12)
        np.testing.assert_allclose(
            smoother.weighted_sum["no2"], np.bincount(edges, w * r, n), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(smoother.weight_sq["no2"], np.bincount(edges, w**2, n),
                                   rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(smoother.weighted_time_s["no2"],
                                   np.bincount(edges, w * times, n), rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(smoother.bias_weight["no2"], np.bincount(edges, w * sds, n),
                                   rtol=1e-10, atol=1e-15)  # fmt: skip
        # Kish's effective count does not decay with age: old single visits stay single.
        snap = smoother.snapshot("no2", smoother.state_time_s + 3000.0, 1e6)
        assert snap.n_effective is not None
        assert snap.mean_time_s is not None
        w_e = np.bincount(edges, w, n)[snap.edges]
        np.testing.assert_allclose(
            snap.n_effective, w_e**2 / np.bincount(edges, w**2, n)[snap.edges], rtol=1e-10
        )
        np.testing.assert_allclose(
            snap.mean_time_s, np.bincount(edges, w * times, n)[snap.edges] / w_e, rtol=1e-12
        )


def test_kriging_degrades_to_the_prior_when_stale() -> None:
    space = EdgeSpace(
        np.array([[0.0, 0.0], [200.0, 0.0], [3000.0, 0.0]]), {"no2": np.array([20.0, 30.0, 25.0])}
    )
    params = KrigingParams(staleness_s=3600.0)
    model = ResidualKriging(space, params)
    model.learn(
        ObservationBatch.create([0, 1], [T0.timestamp()] * 2, "no2", [80.0, 90.0], "r", "reference")
    )
    fresh = model.predict(T0 + dt.timedelta(minutes=10), [0, 60]).pollutants["no2"]
    assert fresh.freshness_s == 600.0
    assert fresh.mean_ugm3[0, 0] > 40.0
    stale = model.predict(T0 + dt.timedelta(hours=3), [0, 60]).pollutants["no2"]
    assert stale.freshness_s is None
    assert stale.n_observed_edges == 0
    np.testing.assert_allclose(stale.mean_ugm3, np.tile(space.prior_ugm3["no2"], (2, 1)))
    want_std = lognormal_std(space.prior_ugm3["no2"], params.prior_log_var)
    np.testing.assert_allclose(stale.std_ugm3, np.tile(want_std, (2, 1)))
    assert np.isfinite(stale.mean_ugm3).all()
    assert np.isfinite(stale.std_ugm3).all()


def test_more_data_means_less_uncertainty_near_it() -> None:
    space = EdgeSpace(np.array([[0.0, 0.0], [50.0, 0.0], [4000.0, 0.0]]), {"no2": np.full(3, 20.0)})
    model = ResidualKriging(space)
    model.learn(
        ObservationBatch.create([0] * 6, [T0.timestamp()] * 6, "no2", [20.0] * 6, "r", "reference")
    )
    est = model.predict(T0, [0, 60]).pollutants["no2"]
    prior_std = lognormal_std(np.full(3, 20.0), KrigingParams().prior_log_var)
    assert est.std_ugm3[0, 0] < est.std_ugm3[0, 2] < prior_std[2] + 1e-9
    assert est.std_ugm3[0, 0] < est.std_ugm3[1, 0]  # forecasts are less certain


def _smooth_field(xy: np.ndarray, length_m: float, seed: int) -> np.ndarray:
    """Unit-variance random field from random Fourier features (Rahimi & Recht 2007)."""
    rng = np.random.default_rng(seed)
    k = 200
    omega = rng.normal(0.0, 1.0 / length_m, (k, 2))
    phase = rng.uniform(0, 2 * np.pi, k)
    return np.sqrt(2.0 / k) * np.cos(xy @ omega.T + phase).sum(axis=1)


def test_kriging_beats_inverse_distance_on_a_smooth_field(helsinki: Network) -> None:
    space = EdgeSpace.from_network(helsinki)
    rng = np.random.default_rng(11)
    truth_log = 0.3 + 0.35 * _smooth_field(space.xy_m, 250.0, seed=3)
    observed = rng.choice(space.n_edges, 300, replace=False)
    hidden = np.setdiff1d(np.arange(space.n_edges), observed)
    rows = []
    for p in space.pollutants:
        v = space.prior_ugm3[p][observed] * np.exp(truth_log[observed] + rng.normal(0, 0.2, 300))
        rows.append(ObservationBatch.create(observed, T0.timestamp(), p, v, "r", "reference"))
    batch = ObservationBatch(
        *(
            np.concatenate([getattr(b, c) for b in rows])
            for c in ("edge_id", "time_s", "pollutant", "value_ugm3", "sensor_id", "sensor_kind")
        )
    )
    errors = {}
    models = {
        "kriging": ResidualKriging(space),
        "idw": InverseDistance(space, relative_to_prior=True),  # the stronger variant
    }
    for name, model in models.items():
        model.learn(batch)
        mean = model.predict(T0, [0]).pollutants["no2"].mean_ugm3[0]
        truth = space.prior_ugm3["no2"] * np.exp(truth_log)
        errors[name] = float(np.sqrt(np.mean((mean[hidden] - truth[hidden]) ** 2)))
    assert errors["kriging"] < 0.9 * errors["idw"], errors


def test_baselines_spread_the_readings_or_their_ratios_to_the_prior() -> None:
    # Three streets on a line; the middle one, 60 m from the first and 140 m from the
    # last, is not observed and has a much higher prior than either.
    prior = np.array([20.0, 80.0, 40.0])
    space = EdgeSpace(np.array([[0.0, 0.0], [60.0, 0.0], [200.0, 0.0]]), {"no2": prior})
    batch = ObservationBatch.create(
        np.array([0, 2]), T0.timestamp(), "no2", np.array([30.0, 40.0]), "r", "reference"
    )
    w0, w2 = 1 / 60.0**2, 1 / 140.0**2
    expected = {
        # The readings themselves: what a city team interpolates without a street map.
        (NearestSensor, False): 30.0,
        (InverseDistance, False): (30.0 * w0 + 40.0 * w2) / (w0 + w2),
        # The prior times the observed ratios (1.5 and 1.0) spread.
        (NearestSensor, True): 80.0 * 1.5,
        (InverseDistance, True): 80.0 * math.exp(math.log(1.5) * w0 / (w0 + w2)),
    }
    for (cls, relative), value in expected.items():
        model = cls(space, relative_to_prior=relative)
        model.learn(batch)
        mean = model.predict(T0, [0.0]).pollutants["no2"].mean_ugm3[0]
        assert mean[1] == pytest.approx(value, rel=1e-12), (cls.__name__, relative)
        assert mean[[0, 2]] == pytest.approx([30.0, 40.0], rel=1e-3)  # observed: kept
