"""Fitting the field model: synthetic data with known parameters must come back out."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from airpath.air.estimate import EdgeSpace
from airpath.air.forecast import LevelForecaster
from airpath.air.kriging import KrigingParams, matern32
from airpath.air.training import (
    DiurnalProfile,
    TrainingAggregates,
    aggregate_readings,
    diurnal_profile,
    empirical_variogram,
    fit_matern32,
    fit_model,
    pair_sums,
)
from airpath.errors import InputError

T0 = 1_777_852_800.0  # 2026-05-04 00:00 UTC, a Monday
LENGTH_M, SILL, NUGGET_SD = 1000.0, 0.09, 0.1


def _matern_draws(seed: int, n_points: int, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in a 6 km square and ``n_draws`` independent Matérn-3/2 fields on them."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 6000.0, (n_points, 2))
    cov = matern32(cdist(xy, xy), SILL, LENGTH_M) + 1e-9 * np.eye(n_points)
    return xy, np.linalg.cholesky(cov) @ rng.normal(size=(n_points, n_draws))


def _sine(hour_s: np.ndarray, utc_offset_h: float) -> np.ndarray:
    """The level of a known diurnal cycle at the middle of each UTC hour."""
    local_h = (hour_s + 1800.0) / 3600.0 + utc_offset_h
    return 0.3 * np.sin(2 * np.pi * local_h / 24.0)


def test_variogram_fit_recovers_matern32_parameters() -> None:
    n, hours = 300, 40
    xy, field = _matern_draws(0, n, hours)
    rng = np.random.default_rng(1)
    values = field + NUGGET_SD * rng.normal(size=field.shape) + rng.normal(0, 0.4, hours)
    cells = pd.DataFrame(
        {
            "pollutant": "no2",
            "hour_s": np.repeat(T0 + 3600.0 * np.arange(hours), n),
            "edge_id": np.tile(np.arange(n), hours),
            "n": 1,
            "mean": values.T.reshape(-1),  # each hour's own level cancels in the pairs
        }
    )
    bins = empirical_variogram(cells, xy, max_lag_m=4000.0, n_bins=20)
    fit = fit_matern32(bins)
    print(f"variogram fit: {fit}")
    assert fit.length_scale_m == pytest.approx(LENGTH_M, rel=0.3)
    assert fit.sill_var == pytest.approx(SILL, rel=0.3)
    assert math.sqrt(fit.nugget_var) == pytest.approx(NUGGET_SD, rel=0.3)
    assert fit.rmse < 0.1 * SILL


def test_pair_sums_match_a_brute_force_loop() -> None:
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 1000, (6, 2))
    cells = pd.DataFrame(
        {
            "pollutant": ["no2"] * 5 + ["pm10"] * 3,
            "hour_s": [0.0, 0.0, 0.0, 3600.0, 3600.0, 0.0, 0.0, 0.0],
            "edge_id": [0, 1, 2, 1, 5, 0, 3, 4],
            "n": [1, 2, 3, 4, 5, 6, 7, 8],
            "mean": rng.normal(size=8),
        }
    )
    got = pair_sums(cells, xy, max_lag_m=900.0, n_bins=3).set_index(["pollutant", "bin"])
    want: dict[tuple[str, int], np.ndarray] = {}
    for i, j in itertools.combinations(range(len(cells)), 2):
        a, b = cells.iloc[i], cells.iloc[j]
        if (a.pollutant, a.hour_s) != (b.pollutant, b.hour_s):
            continue
        d = float(np.hypot(*(xy[a.edge_id] - xy[b.edge_id])))
        if d >= 900.0:
            continue
        row = np.array([1.0, d, 0.5 * (a["mean"] - b["mean"]) ** 2, 0.5 * (1 / a.n + 1 / b.n)])
        key = (a.pollutant, int(d // 300.0))
        want[key] = want.get(key, np.zeros(4)) + row
    assert set(got.index) == set(want)
    for key, row in want.items():
        np.testing.assert_allclose(got.loc[key].to_numpy(np.float64), row, rtol=1e-12)


def test_diurnal_profile_recovers_a_sinusoid_in_local_time() -> None:
    rng = np.random.default_rng(3)
    hours = T0 + 3600.0 * np.arange(14 * 24)
    levels = pd.DataFrame(
        {
            "pollutant": "no2",
            "hour_s": hours,
            "level": _sine(hours, 2.0) + rng.normal(0, 0.05, len(hours)),
        }
    )
    profile = diurnal_profile(levels, utc_offset_h=2.0)
    t = T0 + 86_400 * 3 + 420.0 * np.arange(400)  # every 7 min, between hour middles too
    got = np.array([profile("no2", float(s)) for s in t])
    truth = 0.3 * np.sin(2 * np.pi * (t / 3600.0 + 2.0) / 24.0)
    assert np.abs(got - truth).max() < 0.06
    assert profile.hours.sum() == len(hours)


def test_profile_shrinks_where_data_are_few() -> None:
    # One day: the cycle cannot be told from weather, so the profile is nearly flat.
    day = T0 + 3600.0 * np.arange(24)
    one_day = pd.DataFrame({"pollutant": "pm10", "hour_s": day, "level": 0.1 + _sine(day, 0.0)})
    flat = diurnal_profile(one_day)
    assert np.ptp(flat.level) < 1e-9
    assert flat.level[0, 0, 0] == pytest.approx(0.1)
    # Weekdays only: weekend hours fall back on the hour-of-day profile.
    weekdays = T0 + 3600.0 * np.arange(5 * 24)
    rng = np.random.default_rng(4)
    levels = pd.DataFrame(
        {
            "pollutant": "no2",
            "hour_s": weekdays,
            "level": _sine(weekdays, 0.0) + rng.normal(0, 0.02, len(weekdays)),
        }
    )
    prof = diurnal_profile(levels)
    assert prof.hours[0, 1].sum() == 0
    np.testing.assert_allclose(prof.level[0, 1], prof.level[0, 0], atol=0.01)
    assert np.ptp(prof.level[0, 0]) > 0.5


def test_fit_model_recovers_parameters_from_readings() -> None:
    n_edges, hours, per_cell, reading_sd = 150, 7 * 24, 4, 0.2
    xy, field = _matern_draws(5, n_edges, hours)
    rng = np.random.default_rng(6)
    space = EdgeSpace(xy, {"no2": rng.uniform(10, 50, n_edges)})
    hour_s = T0 + 3600.0 * np.arange(hours)
    log_ratio = field + _sine(hour_s, 1.0) + rng.normal(0, 0.05, hours)  # (edges, hours)
    e, h, k = np.meshgrid(np.arange(n_edges), np.arange(hours), np.arange(per_cell), indexing="ij")
    e, h, k = e.ravel(), h.ravel(), k.ravel()
    r = log_ratio[e, h] + reading_sd * rng.normal(size=len(e))
    frame = pd.DataFrame(
        {
            "sensor_id": [f"s{i}" for i in e],
            "pollutant": "no2",
            "edge_id": e,
            "value_ugm3": space.prior_ugm3["no2"][e] * np.exp(r),
            "time": pd.to_datetime(hour_s[h] + 600.0 * k + 60.0, unit="s", utc=True),
        }
    )
    fitted = fit_model(aggregate_readings(frame, space, max_lag_m=4000.0), utc_offset_h=1.0)
    print(f"fitted kriging: {fitted.kriging}")
    assert fitted.kriging["length_scale_m"] == pytest.approx(LENGTH_M, rel=0.3)
    assert fitted.kriging["residual_sd"] == pytest.approx(math.sqrt(SILL), rel=0.3)
    assert fitted.kriging["nugget_sd"] == pytest.approx(reading_sd, rel=0.3)
    assert fitted.params().n_neighbours == KrigingParams().n_neighbours
    m = fitted.metrics
    assert m["n_readings"] == len(frame)
    assert m["n_sensors"] == n_edges
    assert m["within_cell_var"] == pytest.approx(reading_sd**2, rel=0.1)
    assert m["holdout_hours"] == 24
    # Held-out levels also carry the hour's spatial mean of the field (sd ≈ 0.1).
    assert m["holdout_rmse_profile"] < 0.15
    assert m["holdout_rmse_profile"] < 0.7 * m["holdout_rmse_mean"]
    assert m["holdout_skill"] > 0.3
    assert fitted.data_from.timestamp() == T0 + 60.0
    assert fitted.data_to.timestamp() == hour_s[-1] + 600.0 * (per_cell - 1) + 60.0
    assert all(math.isfinite(v) for v in m.values())


def test_a_length_scale_on_its_bound_overrides_nothing() -> None:
    """Semivariance that jumps within the first 100 m (as sensor biases make it) cannot
    be told from a shorter correlation than the bound: report it, keep the defaults."""
    distance = np.array([40.0, *(150.0 + 130.0 * np.arange(7))])
    semivariance = np.where(distance < 100, 0.01, 0.3)
    n = np.full(8, 200.0)
    sums = pd.DataFrame(
        {
            "pollutant": "no2",
            "bin": np.arange(8),
            "n_pairs": n,
            "sum_distance_m": n * distance,
            "sum_semivariance": n * semivariance,
            "sum_inv_n": n,
        }
    )
    hours = T0 + 3600.0 * np.arange(48)
    levels = pd.DataFrame(
        {"pollutant": "no2", "hour_s": hours, "level": _sine(hours, 0.0), "n_edges": 5}
    )
    within = pd.DataFrame({"pollutant": ["no2"], "dof": [0.0], "sum_sq": [0.0]})
    agg = TrainingAggregates(levels, sums, within, 1000, 5, T0, T0 + 48 * 3600.0, 1000.0)
    fitted = fit_model(agg)
    assert fitted.kriging == {}
    assert fitted.metrics["length_scale_at_bound"] == 1.0
    assert fitted.metrics["variogram_length_scale_m"] == pytest.approx(100.0, rel=0.01)
    assert fitted.params() == KrigingParams()


def test_bad_inputs_raise_named_errors() -> None:
    with pytest.raises(InputError, match="lack columns"):
        diurnal_profile(pd.DataFrame({"pollutant": ["no2"]}))
    with pytest.raises(InputError, match="no diurnal profile"):
        DiurnalProfile(("no2",), np.zeros((1, 2, 24)), np.zeros((1, 2, 24), np.int64))("o3", 0.0)
    space = EdgeSpace(np.zeros((2, 2)), {"no2": np.ones(2)})
    unmatched = pd.DataFrame(
        {
            "sensor_id": ["a"],
            "pollutant": ["no2"],
            "edge_id": [-1],
            "value_ugm3": [1.0],
            "time": pd.to_datetime([T0], unit="s", utc=True),
        }
    )
    with pytest.raises(InputError, match="no usable readings"):
        aggregate_readings(unmatched, space)


# ---------------------------------------------------------------- the forecaster hook


def _cycle(t: np.ndarray) -> np.ndarray:
    """A 7-hour cycle: invisible to the forecaster's daily harmonics."""
    return 0.4 * np.sin(2 * np.pi * t / (7 * 3600.0))


def _run(fc: LevelForecaster, t: np.ndarray, level: np.ndarray) -> float:
    """Learn the series; RMSE of 60-min forecasts over its second half."""
    steps, sq = 12, []
    for i, (ti, li) in enumerate(zip(t, level, strict=True)):
        if i >= len(t) // 2 and i + steps < len(t):
            sq.append((fc.forecast(float(ti), float(li), 60.0) - level[i + steps]) ** 2)
        fc.learn(float(ti), float(li))
    return math.sqrt(float(np.mean(sq)))


def test_a_learnt_profile_feature_helps_and_a_flat_one_changes_nothing() -> None:
    rng = np.random.default_rng(7)
    t = T0 + 300.0 * np.arange(4 * 288)
    noise = np.zeros(len(t))
    for i in range(1, len(t)):
        noise[i] = 0.95 * noise[i - 1] + rng.normal(0, 0.02)
    level = _cycle(t) + noise
    plain_fc = LevelForecaster()
    plain = _run(plain_fc, t, level)
    with_profile = _run(LevelForecaster(diurnal=lambda s: float(_cycle(np.array(s)))), t, level)
    print(f"60-min RMSE without profile {plain:.4f}, with {with_profile:.4f}")
    assert with_profile < 0.7 * plain
    # An always-zero change (a flat profile) leaves river's numbers bit for bit alone.
    flat = LevelForecaster(diurnal=lambda _s: 0.25)
    assert _run(flat, t, level) == plain
    assert flat.rmse() == plain_fc.rmse()


def test_profile_adopted_mid_stream_keeps_learnt_weights() -> None:
    t = T0 + 300.0 * np.arange(288)
    fc = LevelForecaster()
    for ti, li in zip(t, _cycle(t), strict=True):
        fc.learn(float(ti), float(li))
    weights = dict(fc.models[60.0].weights)
    learned = dict(fc.n_learned)
    fc.diurnal = lambda s: float(_cycle(np.array(s)))
    assert fc.models[60.0].weights == weights
    assert fc.n_learned == learned
    fc.learn(float(t[-1] + 300.0), float(_cycle(t[-1:] + 300.0)[0]))
    assert "diurnal_change" in fc.models[60.0].weights
    assert math.isfinite(fc.forecast(float(t[-1]), 0.0, 60.0))
