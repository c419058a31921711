"""The covariance residual kriging fits to its own residuals as it learns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import KrigingParams, ResidualKriging, matern32
from airpath.air.observations import ObservationBatch
from airpath.air.variogram import OnlineVariogram, fit_matern32, pair_sums, variogram_from_sums

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
LENGTH_M, SILL, NUGGET = 1200.0, 0.09, 0.02


def _field(seed: int, n_points: int, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in an 8 km square and ``n_draws`` independent Matérn-3/2 fields plus nugget."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 8000.0, (n_points, 2))
    cov = matern32(cdist(xy, xy), SILL, LENGTH_M) + 1e-9 * np.eye(n_points)
    z = np.linalg.cholesky(cov) @ rng.normal(size=(n_points, n_draws))
    return xy, z + rng.normal(0.0, math.sqrt(NUGGET), z.shape)


def test_online_variogram_recovers_a_known_covariance() -> None:
    xy, fields = _field(0, 300, 12)
    vg = OnlineVariogram(max_lag_m=4000.0, half_life_s=math.inf)
    for k in range(fields.shape[1]):
        vg.add(600.0 * k, xy, fields[:, k], np.full(len(xy), 0.5 * NUGGET))
    got = vg.fit()
    assert got is not None
    fit, noise_scale = got
    assert fit.length_scale_m == pytest.approx(LENGTH_M, rel=0.3)
    assert fit.sill_var == pytest.approx(SILL, rel=0.3)
    assert fit.nugget_var == pytest.approx(NUGGET, rel=0.3)
    # The stated noise was half the real nugget: the fit says to double it.
    assert noise_scale == pytest.approx(2.0, rel=0.3)


def test_online_variogram_sums_are_the_batch_pair_sums() -> None:
    """Without forgetting, the online bins are those of the batch reduction."""
    xy, fields = _field(1, 80, 3)
    vg = OnlineVariogram(max_lag_m=4000.0, n_bins=10, half_life_s=math.inf, min_pairs=1)
    cells = []
    for k in range(3):
        vg.add(60.0 * k, xy, fields[:, k], np.zeros(len(xy)))
        cells.append(
            pd.DataFrame(
                {"pollutant": "no2", "hour_s": k, "edge_id": np.arange(80), "n": 1.0}
                | {"mean": fields[:, k]}
            )
        )
    batch = variogram_from_sums(
        pair_sums(pd.concat(cells), xy, max_lag_m=4000.0, n_bins=10), min_pairs=1
    )
    online = vg.bins()
    np.testing.assert_allclose(online.semivariance, batch.semivariance, rtol=1e-9)
    np.testing.assert_allclose(online.distance_m, batch.distance_m, rtol=1e-9)
    np.testing.assert_array_equal(online.n_pairs, batch.n_pairs)
    assert fit_matern32(online).length_scale_m > 0


def test_online_variogram_forgets_old_air() -> None:
    """After many half-lives only the new field's variogram is left."""
    xy, fields = _field(2, 200, 2)
    vg = OnlineVariogram(max_lag_m=4000.0, half_life_s=600.0)
    vg.add(0.0, xy, 5.0 * fields[:, 0], np.full(len(xy), NUGGET))
    vg.add(60_000.0, xy, fields[:, 1], np.full(len(xy), NUGGET))
    fresh = OnlineVariogram(max_lag_m=4000.0, half_life_s=600.0)
    fresh.add(0.0, xy, fields[:, 1], np.full(len(xy), NUGGET))
    np.testing.assert_allclose(vg.bins().semivariance, fresh.bins().semivariance, rtol=1e-6)


def test_online_variogram_without_enough_pairs_has_no_fit() -> None:
    vg = OnlineVariogram(max_lag_m=1000.0)
    vg.add(0.0, np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([0.1, 0.2]), np.ones(2))
    assert vg.fit() is None


def _learn_field(model: ResidualKriging, xy_edges: np.ndarray, values: np.ndarray) -> None:
    """One reference reading per edge per 10 min for two hours, values a log-ratio field."""
    edges = np.arange(len(xy_edges))
    prior = model.space.prior_ugm3["no2"]
    for k in range(12):
        t = (T0 + dt.timedelta(minutes=10 * k)).timestamp()
        model.learn(
            ObservationBatch.create(
                edges,
                np.full(len(edges), t),
                "no2",
                prior * np.exp(values[:, k % values.shape[1]]),
                [f"s-{e}" for e in edges],
                "mobile",
            )
        )


def test_the_model_fits_its_length_scale_and_noise_ratio() -> None:
    xy, fields = _field(3, 250, 1)
    space = EdgeSpace(xy, {"no2": np.full(len(xy), 20.0)})
    # One observation per edge (no pooling into cells), to compare the plan's noise edge
    # by edge.
    start = KrigingParams(length_scale_m=300.0, covariance_refit_s=600.0, cell_m=0.0)
    model = ResidualKriging(space, start)
    assert model.covariance["no2"].length_scale_m == 300.0
    _learn_field(model, xy, fields)
    cov = model.covariance["no2"]
    assert cov.length_scale_m == pytest.approx(LENGTH_M, rel=0.4)
    assert cov.residual_sd == start.residual_sd  # the variance scale is the parameters'
    plan = model.plan(T0 + dt.timedelta(hours=2), [0.0])
    assert plan.pollutants["no2"].length_scale_m == cov.length_scale_m
    # The noise the plan states is the model's noise model times the fitted factor.
    snap = model.smoother.snapshot("no2", (T0 + dt.timedelta(hours=2)).timestamp(), 3600.0)
    raw = model._noise_var(snap, (T0 + dt.timedelta(hours=2)).timestamp(), "no2", scaled=False)
    np.testing.assert_allclose(plan.pollutants["no2"].obs_noise_var, raw * cov.noise_scale)
    # Without the fit the same data leave the starting covariance alone.
    fixed = ResidualKriging(space, dataclasses.replace(start, fit_covariance=False))
    _learn_field(fixed, xy, fields)
    assert fixed.covariance["no2"].length_scale_m == 300.0
    assert fixed.covariance["no2"].noise_scale == 1.0


def test_few_observed_edges_keep_the_starting_covariance() -> None:
    xy, fields = _field(4, 20, 1)  # under MIN_FIT_SITES
    model = ResidualKriging(EdgeSpace(xy, {"no2": np.full(len(xy), 20.0)}))
    _learn_field(model, xy, fields)
    assert model.covariance["no2"].length_scale_m == KrigingParams().length_scale_m


def test_new_parameters_restart_the_covariance_and_states_round_trip() -> None:
    xy, fields = _field(5, 250, 1)
    space = EdgeSpace(xy, {"no2": np.full(len(xy), 20.0)})
    model = ResidualKriging(space, KrigingParams(covariance_refit_s=600.0))
    _learn_field(model, xy, fields)
    fitted = model.covariance["no2"]
    assert fitted.length_scale_m != KrigingParams().length_scale_m
    restored = pickle.loads(pickle.dumps(model))
    assert restored.covariance == model.covariance
    assert restored.params == model.params
    model.params = KrigingParams(length_scale_m=640.0)
    assert model.covariance["no2"].length_scale_m == 640.0
    assert model.variograms["no2"].noise_weight == 0.0


def test_a_state_pickled_before_the_fit_existed_loads_with_the_defaults() -> None:
    xy, fields = _field(6, 40, 1)
    model = ResidualKriging(EdgeSpace(xy, {"no2": np.full(len(xy), 20.0)}))
    _learn_field(model, xy, fields)
    state = dict(model.__dict__)
    state["params"] = state.pop("_params")
    for key in ("covariance", "variograms", "next_fit_s"):
        del state[key]
    old = ResidualKriging.__new__(ResidualKriging)
    old.__setstate__(state)
    assert old.covariance["no2"].length_scale_m == model.params.length_scale_m
    est = old.predict(T0 + dt.timedelta(hours=2), [0.0]).pollutants["no2"].mean_ugm3
    assert np.isfinite(est).all()
