"""The contract every street-level estimator keeps, run on each implementation."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from collections.abc import Callable

import numpy as np
import pytest

from airpath.air.calibration import CalibratedEstimator, SensorCalibrator
from airpath.air.estimate import (
    EdgeSpace,
    Estimator,
    InverseDistance,
    NearestSensor,
    PriorOnly,
)
from airpath.air.kriging import ResidualKriging
from airpath.air.observations import ObservationBatch
from airpath.network.store import Network

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
HORIZONS_MIN = (0.0, 15.0, 30.0, 60.0)

FACTORIES: dict[str, Callable[[EdgeSpace], Estimator]] = {
    "PriorOnly": PriorOnly,
    "NearestSensor": NearestSensor,
    "InverseDistance": InverseDistance,
    "PriorNearestSensor": lambda s: NearestSensor(s, relative_to_prior=True),
    "PriorInverseDistance": lambda s: InverseDistance(s, relative_to_prior=True),
    "ResidualKriging": ResidualKriging,
    "CalibratedKriging": lambda s: CalibratedEstimator(ResidualKriging(s), SensorCalibrator(s)),
}
LEARNING = [k for k in FACTORIES if k != "PriorOnly"]


@pytest.fixture(scope="module")
def space(helsinki: Network) -> EdgeSpace:
    return EdgeSpace.from_network(helsinki)


def _batch(space: EdgeSpace, seed: int, n_edges: int = 40, factor: float = 1.5) -> ObservationBatch:
    rng = np.random.default_rng(seed)
    edges = rng.choice(space.n_edges, n_edges, replace=False)
    rows = [
        {
            "edge_id": int(e),
            "time": T0 - dt.timedelta(minutes=int(rng.integers(0, 10))),
            "pollutant": p,
            "value_ugm3": float(space.prior_ugm3[p][e] * factor * rng.lognormal(0.0, 0.1)),
            "sensor_id": f"ref-{e}",
            "sensor_kind": "reference",
        }
        for e in edges
        for p in space.pollutants
    ]
    return ObservationBatch.from_records(rows)


def _means(est: Estimator) -> dict[str, np.ndarray]:
    out = est.predict(T0, HORIZONS_MIN)
    return {p: np.concatenate([e.mean_ugm3, e.std_ugm3]) for p, e in out.pollutants.items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for p, values in a.items():
        np.testing.assert_array_equal(values, b[p])


@pytest.mark.parametrize("name", FACTORIES)
def test_predict_before_learn_is_the_prior(space: EdgeSpace, name: str) -> None:
    est = FACTORIES[name](space)
    assert isinstance(est, Estimator)
    out = est.predict(T0, HORIZONS_MIN)
    assert set(out.pollutants) == set(space.pollutants)
    for p, e in out.pollutants.items():
        assert e.mean_ugm3.shape == e.std_ugm3.shape == (len(HORIZONS_MIN), space.n_edges)
        np.testing.assert_allclose(e.mean_ugm3, np.tile(space.prior_ugm3[p], (4, 1)), rtol=1e-12)
        assert np.isfinite(e.std_ugm3).all()
        assert (e.std_ugm3 > 0).all()
        assert e.freshness_s is None
    field = out.to_field("v1")
    assert field.horizons_min == HORIZONS_MIN


@pytest.mark.parametrize("name", FACTORIES)
def test_shapes_finite_and_non_negative_after_learning(space: EdgeSpace, name: str) -> None:
    est = FACTORIES[name](space)
    est.learn(_batch(space, 1))
    out = est.predict(T0, HORIZONS_MIN)
    for e in out.pollutants.values():
        assert e.mean_ugm3.shape == e.std_ugm3.shape == (len(HORIZONS_MIN), space.n_edges)
        assert np.isfinite(e.mean_ugm3).all()
        assert np.isfinite(e.std_ugm3).all()
        assert (e.mean_ugm3 >= 0).all()
        assert (e.std_ugm3 >= 0).all()
    out.to_field("v2")  # the router's validation accepts it


@pytest.mark.parametrize("name", FACTORIES)
def test_deterministic(space: EdgeSpace, name: str) -> None:
    a, b = FACTORIES[name](space), FACTORIES[name](space)
    for est in (a, b):
        est.learn(_batch(space, 2))
        est.learn(_batch(space, 3))
    _same(_means(a), _means(b))


@pytest.mark.parametrize("name", FACTORIES)
def test_deepcopy_and_pickle_round_trip(space: EdgeSpace, name: str) -> None:
    est = FACTORIES[name](space)
    est.learn(_batch(space, 4))
    want = _means(est)
    _same(_means(copy.deepcopy(est)), want)
    _same(_means(pickle.loads(pickle.dumps(est))), want)
    # The copies learn on as the original does.
    clone = pickle.loads(pickle.dumps(est))
    est.learn(_batch(space, 5))
    clone.learn(_batch(space, 5))
    _same(_means(clone), _means(est))


@pytest.mark.parametrize("name", FACTORIES)
def test_empty_batch_is_a_no_op(space: EdgeSpace, name: str) -> None:
    est = FACTORIES[name](space)
    est.learn(_batch(space, 6))
    before = est.predict(T0, HORIZONS_MIN)
    est.learn(ObservationBatch.empty())
    after = est.predict(T0, HORIZONS_MIN)
    assert before.model_version == after.model_version
    _same(
        _means(est),
        {p: np.concatenate([e.mean_ugm3, e.std_ugm3]) for p, e in before.pollutants.items()},
    )


@pytest.mark.parametrize("name", LEARNING)
def test_observation_pulls_its_edge_toward_the_observed_value(space: EdgeSpace, name: str) -> None:
    est = FACTORIES[name](space)
    e = 123
    observed = {p: 3.0 * float(space.prior_ugm3[p][e]) for p in space.pollutants}
    rows = [
        {
            "edge_id": e,
            "time": T0,
            "pollutant": p,
            "value_ugm3": v,
            "sensor_id": "ref-a",
            "sensor_kind": "reference",
        }
        for p, v in observed.items()
    ]
    est.learn(ObservationBatch.from_records(rows * 4))
    out = est.predict(T0, [0.0])
    for p, v in observed.items():
        prior = space.prior_ugm3[p][e]
        got = out.pollutants[p].mean_ugm3[0, e]
        assert abs(got - v) < 0.5 * abs(prior - v), (p, prior, got, v)
        assert out.pollutants[p].freshness_s == 0.0
