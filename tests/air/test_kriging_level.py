"""The city level of residual kriging: referencing, reference lag, low-cost bias."""

from __future__ import annotations

import datetime as dt

import numpy as np

from airpath.air.estimate import EdgeSmoother, EdgeSpace
from airpath.air.forecast import LevelForecaster
from airpath.air.kriging import KrigingParams, LevelFilter, ResidualKriging
from airpath.air.observations import ObservationBatch

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
# Two far-apart clusters: edge 0 is a street seen once; edges 1-3 are seen every batch.
XY = np.array([[0.0, 0.0], [20_000.0, 0.0], [20_050.0, 0.0], [20_100.0, 0.0], [10_000.0, 0.0]])
PRIOR = {"no2": np.full(5, 20.0)}


def _batch(edges: list[int], t: dt.datetime, values: list[float], kind: str) -> ObservationBatch:
    n = len(edges)
    return ObservationBatch.create(edges, [t.timestamp()] * n, "no2", values, "s-1", kind)


def test_a_street_seen_earlier_follows_the_city_level() -> None:
    """Edge 0 read 1.5× the prior when the city was at its prior; later the whole city
    doubles (seen far away). Edge 0 must stay above an edge never seen (its residual is
    kept against the level of its time, shrunk as it ages), where a residual against
    today's level would put it below (log 1.5 - log 2 < 0)."""
    model = ResidualKriging(EdgeSpace(XY, PRIOR))
    for k in range(3):
        model.learn(_batch([1, 2, 3], T0 + dt.timedelta(minutes=5 * k), [20.0] * 3, "mobile"))
    model.learn(_batch([0] * 6, T0 + dt.timedelta(minutes=15), [30.0] * 6, "mobile"))
    for k in range(4, 10):
        t = T0 + dt.timedelta(minutes=5 * k)
        model.learn(_batch([1, 2, 3] * 4, t, [40.0] * 12, "mobile"))
    est = model.predict(T0 + dt.timedelta(minutes=45), [0.0]).pollutants["no2"].mean_ugm3[0]
    assert est[1] > 35.0
    assert est[4] > 30.0, est  # the unseen street rose with the city
    assert est[0] > 1.15 * est[4], est  # the seen street stays above it


def test_reference_hourly_means_count_less_for_the_level_now() -> None:
    """The same numbers move the level less when they are hourly means (reference)."""
    moved = {}
    for kind in ("reference", "mobile"):
        model = ResidualKriging(EdgeSpace(XY, PRIOR))
        model.learn(_batch([1, 2, 3], T0, [20.0] * 3, kind))
        before = model.levels["no2"].mean
        model.learn(_batch([1, 2, 3], T0 + dt.timedelta(minutes=5), [40.0] * 3, kind))
        moved[kind] = model.levels["no2"].mean - before
    assert 0.0 < moved["reference"] < moved["mobile"]


def test_low_cost_readings_carry_a_bias_that_does_not_average_out() -> None:
    space = EdgeSpace(XY, PRIOR)
    smoother = EdgeSmoother(space)
    smoother.learn(_batch([0, 0, 1, 1], T0, [20.0] * 4, "mobile"))
    smoother.learn(_batch([0, 0, 2, 2], T0, [20.0] * 4, "low_cost"))
    snap = smoother.snapshot("no2", T0.timestamp(), 3600.0)
    share = dict(zip(snap.edges.tolist(), snap.low_cost_share.tolist(), strict=True))
    assert share == {0: 0.5, 1: 0.0, 2: 1.0}
    model = ResidualKriging(space, KrigingParams(low_cost_bias_sd=0.1))
    many = ResidualKriging(space, KrigingParams(low_cost_bias_sd=0.1))
    model.learn(_batch([2] * 4, T0, [20.0] * 4, "low_cost"))
    many.learn(_batch([2] * 400, T0, [20.0] * 400, "low_cost"))
    # More readings of one low-cost sensor shrink the noise, never below the bias.
    s1 = model._noise_var(
        model.smoother.snapshot("no2", T0.timestamp(), 3600.0), T0.timestamp(), "no2"
    )
    s400 = many._noise_var(
        many.smoother.snapshot("no2", T0.timestamp(), 3600.0), T0.timestamp(), "no2"
    )
    assert s1[0] > s400[0] >= 0.1**2


def test_level_filter_grows_uncertain_and_is_capped() -> None:
    f = LevelFilter()
    assert f.at(0.0, 1e-4, 0.16) == (0.0, 0.16)
    f.update(0.0, 1e-4, 0.16, np.array([0.3]), np.array([0.01]))
    mean, var = f.at(0.0, 1e-4, 0.16)
    assert 0.28 < mean < 0.3
    assert var < 0.01
    assert f.at(600.0, 1e-4, 0.16)[1] > var  # a random walk: less sure later
    assert f.at(1e9, 1e-4, 0.16)[1] == 0.16


def test_forecaster_without_skill_serves_persistence() -> None:
    """On a pure random walk no model beats persistence; what is served stays persistence."""
    rng = np.random.default_rng(3)
    fc = LevelForecaster(warm_up=10)
    level, t = 0.0, 1_714_521_600.0
    for _ in range(600):
        level += rng.normal(0.0, 0.05)
        t += 300.0
        fc.learn(t, level)
    for h in fc.horizons_min:
        if not fc.skilful(h):
            assert fc.forecast(t, level, h) == level
    assert not all(fc.skilful(h) for h in fc.horizons_min)


def test_states_pickled_before_the_level_filter_load() -> None:
    import pickle

    model = ResidualKriging(EdgeSpace(XY, PRIOR))
    model.learn(_batch([1, 2, 3], T0, [30.0] * 3, "mobile"))
    old = model.__dict__.copy()
    del old["levels"]
    fc = old["forecasters"]["no2"]
    del fc.__dict__["_raw_rmse"]
    for step in fc.history:
        del step.__dict__["raw"]
    model.__dict__ = old
    back = pickle.loads(pickle.dumps(model))
    back.learn(_batch([1, 2, 3], T0 + dt.timedelta(minutes=5), [30.0] * 3, "mobile"))
    assert back.levels["no2"].mean > 0.0
