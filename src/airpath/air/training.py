"""Fitting the field model to the history lake: a diurnal profile and a Matérn-3/2 variogram.

Plain NumPy/pandas. The Spark job (:mod:`airpath.pipeline.train`) computes the same
aggregates at scale and fits them with :func:`fit_model`; :func:`aggregate_readings` is
the in-memory reference it is tested against.

Reduction, in log-ratio space ``r = log(max(c, 0.1 µg/m³) / prior(edge))``
(:mod:`airpath.air.estimate`):

1. **cells** — per (pollutant, UTC hour, edge): count ``n``, mean ``m``, sample variance;
2. **hourly levels** ``L`` — the mean of an hour's cell means, each observed edge once
   (a bike reporting every second weighs no more than a station reporting hourly): the
   city-wide level of :mod:`airpath.air.kriging`;
3. **pair sums** — for pairs of distinct edges in one (pollutant, hour) whose midpoints
   are ``d < max_lag_m`` apart, per distance bin: ``N``, ``Σd``, ``Σ½(m_i - m_j)²`` and
   ``Σ½(1/n_i + 1/n_j)``. The hour's level cancels in ``m_i - m_j``, so these are the
   semivariances of the residuals ``r - L`` without forming them.

Fits:

* **variogram** — Matheron's estimator ``γ̂_h = Σ½(m_i - m_j)² / N_h`` (Cressie 1993,
  *Statistics for Spatial Data*, eq. 2.4.2) fitted by ``γ(d) = c0 + σ²(1 - ρ(d/ℓ))``, ``ρ``
  the Matérn-3/2 correlation of :func:`~airpath.air.kriging.matern32`, minimising
  ``Σ_h N_h (γ̂_h / γ(d_h) - 1)²`` — Cressie's (1985, *Math. Geology* 17:563) weighted
  least squares, weights ``N_h / γ(d_h)²`` — with ``ℓ`` in 100 m – 10 km. Bins with under
  30 pairs are dropped and the default maximum lag is half the network's diagonal (both
  Journel & Huijbregts 1978, *Mining Geostatistics*). ``σ`` → ``residual_sd``, ``ℓ`` →
  ``length_scale_m``;
* **per-reading noise** — kriging divides ``nugget_sd²`` by an edge's effective count of
  readings, while the fitted ``c0`` is the noise of an hourly *cell mean*: ``s_w² E[1/n]``
  (``s_w²`` the pooled within-cell variance ``Σ(n-1)s² / Σ(n-1)``) plus whatever does not
  average out within an hour (a low-cost sensor's bias, a façade's siting). Hence
  ``nugget_sd² = s_w² + max(c0 - s_w² E[1/n], 0)``, ``E[1/n]`` averaged over the pairs; with
  one reading per cell this is ``c0``. A length scale on a bound is not identified by the
  lags observed (typically: too few distinct sites, whose own biases then make the
  variogram); the fit is then reported in the metrics but no override is made;
* **diurnal profile** — :func:`airpath.air.diurnal.diurnal_profile`; its use is scored by
  :func:`holdout_scores`.

The variogram lives in :mod:`airpath.air.variogram`, the profile in
:mod:`airpath.air.diurnal`; their names are re-exported here (model artifacts pickled
before the split refer to them by this module).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from airpath.air.diurnal import (
    DiurnalProfile,
    PollutantProfile,
    day_type,
    diurnal_profile,
)
from airpath.air.estimate import MIN_VALUE_UGM3, EdgeSpace
from airpath.air.frames import require_columns
from airpath.air.kriging import KrigingParams
from airpath.air.observations import FloatArray
from airpath.air.variogram import (
    LENGTH_BOUNDS_M,
    MIN_PAIRS_PER_BIN,
    PAIR_SUM_COLUMNS,
    Matern32Fit,
    VariogramBins,
    empirical_variogram,
    fit_matern32,
    pair_sums,
    variogram_from_sums,
)
from airpath.errors import InputError

__all__ = [
    "DAY_S",
    "HOUR_S",
    "LENGTH_BOUNDS_M",
    "MIN_PAIRS_PER_BIN",
    "MIN_SD",
    "PAIR_SUM_COLUMNS",
    "DiurnalProfile",
    "FittedModel",
    "Matern32Fit",
    "PollutantProfile",
    "TrainingAggregates",
    "VariogramBins",
    "aggregate_readings",
    "cells_from_readings",
    "day_type",
    "default_max_lag_m",
    "diurnal_profile",
    "empirical_variogram",
    "fit_matern32",
    "fit_model",
    "holdout_scores",
    "pair_sums",
    "variogram_from_sums",
]

HOUR_S = 3600.0
DAY_S = 86_400.0
MIN_SD = 0.01  # log units (1 %): floor of fitted sds, so kriging never divides by zero


@dataclass(frozen=True, eq=False)
class TrainingAggregates:
    """What the Spark job collects to the driver: all small (see the module doc).

    ``levels``: pollutant, hour_s, level, n_edges, n_readings; ``pair_sums``: pollutant,
    bin and :data:`PAIR_SUM_COLUMNS`; ``within``: pollutant, dof (``Σ(n-1)``) and sum_sq
    (``Σ(n-1)s²``) over cells; ``pair_fraction``: share of hours whose pairs were summed.
    """

    levels: pd.DataFrame
    pair_sums: pd.DataFrame
    within: pd.DataFrame
    n_readings: int
    n_sensors: int
    time_from_s: float
    time_to_s: float
    max_lag_m: float
    pair_fraction: float = 1.0


@dataclass(frozen=True, eq=False)
class FittedModel:
    """``kriging``: overrides of :class:`KrigingParams` (empty when no variogram could be
    fitted, or its length scale is on a bound); ``metrics``: finite numbers only, see
    :func:`fit_model`."""

    kriging: dict[str, float]
    profile: DiurnalProfile
    metrics: dict[str, float]
    data_from: dt.datetime
    data_to: dt.datetime

    def params(self, base: KrigingParams | None = None) -> KrigingParams:
        overrides: dict[str, Any] = dict(self.kriging)
        return dataclasses.replace(base or KrigingParams(), **overrides)


def default_max_lag_m(space: EdgeSpace) -> float:
    """Half the diagonal of the edges' bounding box, within 500 m – 20 km."""
    span = space.xy_m.max(axis=0) - space.xy_m.min(axis=0)
    return float(np.clip(0.5 * math.hypot(*span), 500.0, 20_000.0))


def cells_from_readings(frame: pd.DataFrame, space: EdgeSpace) -> pd.DataFrame:
    """Usable readings → cells: pollutant, hour_s, edge_id, n, mean, var (NaN when n = 1)."""
    f = _usable(frame, space)
    prior = np.zeros(len(f))
    for p in space.pollutants:
        rows = (f["pollutant"] == p).to_numpy()
        prior[rows] = space.prior_ugm3[p][f["edge_id"].to_numpy(np.int64)[rows]]
    value = np.maximum(f["value_ugm3"].to_numpy(np.float64), MIN_VALUE_UGM3)
    keyed = pd.DataFrame(
        {
            "pollutant": f["pollutant"].astype(str).to_numpy(),
            "hour_s": np.floor(_epoch_s(f["time"]) / HOUR_S) * HOUR_S,
            "edge_id": f["edge_id"].to_numpy(np.int64),
            "r": np.log(value / prior),
        }
    )
    cells = keyed.groupby(["pollutant", "hour_s", "edge_id"])["r"].agg(["count", "mean", "var"])
    return cells.rename(columns={"count": "n"}).reset_index()


def aggregate_readings(
    frame: pd.DataFrame, space: EdgeSpace, *, max_lag_m: float | None = None, n_bins: int = 15
) -> TrainingAggregates:
    """The in-memory reference of the Spark job's aggregation (no hour sampling)."""
    f = _usable(frame, space)
    if f.empty:
        raise InputError("no usable readings (matched, of a pollutant with a prior)")
    cells = cells_from_readings(f, space)
    levels = (
        cells.groupby(["pollutant", "hour_s"])
        .agg(level=("mean", "mean"), n_edges=("edge_id", "size"), n_readings=("n", "sum"))
        .reset_index()
    )
    multi = cells[cells["n"] >= 2]
    within = (
        multi.assign(dof=multi["n"] - 1, sum_sq=(multi["n"] - 1) * multi["var"])
        .groupby("pollutant")[["dof", "sum_sq"]]
        .sum()
        .reset_index()
    )
    lag = default_max_lag_m(space) if max_lag_m is None else float(max_lag_m)
    t = _epoch_s(f["time"])
    return TrainingAggregates(
        levels,
        pair_sums(cells, space.xy_m, max_lag_m=lag, n_bins=n_bins),
        within,
        len(f),
        int(f["sensor_id"].nunique()),
        float(t.min()),
        float(t.max()),
        lag,
    )


def fit_model(
    agg: TrainingAggregates, *, utc_offset_h: float = 0.0, min_pairs: int = MIN_PAIRS_PER_BIN
) -> FittedModel:
    """Kriging overrides (pooled over pollutants: :class:`KrigingParams` is shared), the
    diurnal profile and metrics: counts, data hours, the fit (pooled and per pollutant as
    ``<pollutant>.<name>``), the observed sd of hourly levels and :func:`holdout_scores`."""
    m: dict[str, float] = {
        "n_readings": agg.n_readings,
        "n_sensors": agg.n_sensors,
        "n_hours": int(agg.levels["hour_s"].nunique()),
        "data_hours": (agg.time_to_s - agg.time_from_s) / HOUR_S,
        "max_lag_m": agg.max_lag_m,
        "variogram_pair_fraction": agg.pair_fraction,
    }
    dof = float(agg.within["dof"].sum()) if len(agg.within) else 0.0
    within = float(agg.within["sum_sq"].sum()) / dof if dof > 0 else 0.0
    m["within_cell_var"] = within
    kriging: dict[str, float] = {}
    pooled = variogram_from_sums(agg.pair_sums, min_pairs=min_pairs)
    m["variogram_pairs"] = pooled.total_pairs
    m["variogram_bins"] = len(pooled.n_pairs)
    if len(pooled.n_pairs) >= 3 and pooled.semivariance.max() > 0:
        fit = fit_matern32(pooled)
        nugget_var = within + max(fit.nugget_var - within * pooled.mean_inv_n, 0.0)
        lo, hi = LENGTH_BOUNDS_M
        at_bound = not lo * 1.01 < fit.length_scale_m < hi / 1.01
        m |= {
            "variogram_rmse": fit.rmse,
            "variogram_nugget_var": fit.nugget_var,
            "variogram_sill_var": fit.sill_var,
            "variogram_length_scale_m": fit.length_scale_m,
            "length_scale_at_bound": float(at_bound),
        }
        if not at_bound:
            kriging = {
                "residual_sd": max(math.sqrt(fit.sill_var), MIN_SD),
                "nugget_sd": max(math.sqrt(nugget_var), MIN_SD),
                "length_scale_m": fit.length_scale_m,
            }
    for p in sorted(agg.levels["pollutant"].unique()):
        m[f"{p}.level_sd"] = float(agg.levels.loc[agg.levels["pollutant"] == p, "level"].std())
        one = variogram_from_sums(agg.pair_sums, str(p), min_pairs=min_pairs)
        if len(one.n_pairs) >= 3 and one.semivariance.max() > 0:
            f = fit_matern32(one)
            m[f"{p}.length_scale_m"] = f.length_scale_m
            m[f"{p}.residual_sd"] = math.sqrt(f.sill_var)
    m |= holdout_scores(agg.levels, utc_offset_h=utc_offset_h)
    return FittedModel(
        kriging,
        diurnal_profile(agg.levels, utc_offset_h=utc_offset_h),
        {k: float(v) for k, v in m.items() if math.isfinite(v)},
        dt.datetime.fromtimestamp(agg.time_from_s, dt.UTC),
        dt.datetime.fromtimestamp(agg.time_to_s, dt.UTC),
    )


def holdout_scores(
    levels: pd.DataFrame, *, utc_offset_h: float = 0.0, holdout_fraction: float = 0.2
) -> dict[str, float]:
    """Does the profile help? Fit it on all but the last day or the last ``holdout_fraction``
    of the hours, whichever is shorter, and give the RMSE (log units) over the held-out
    hourly levels of the profile, of the training mean and of persistence (the level an
    hour before), pooled (``holdout_rmse_*``) and per pollutant; ``holdout_skill`` is
    ``1 - rmse_profile / rmse_mean`` (> 0: the profile beats a constant)."""
    t = levels["hour_s"].to_numpy(np.float64)
    if len(t) == 0:
        return {}
    end = float(t.max()) + HOUR_S
    cut = math.ceil(max(end - DAY_S, t.min() + (1 - holdout_fraction) * (end - t.min())) / HOUR_S)
    train, test = levels[t < cut * HOUR_S], levels[t >= cut * HOUR_S]
    if train.empty or test.empty:
        return {}
    profile = diurnal_profile(train, utc_offset_h=utc_offset_h)
    previous = levels.set_index(["pollutant", "hour_s"])["level"]
    pooled: dict[str, list[float]] = {"profile": [], "mean": [], "persistence": []}
    out: dict[str, float] = {"holdout_hours": float(test["hour_s"].nunique())}
    for p, rows in test.groupby("pollutant"):
        if p not in profile.pollutants:
            continue
        y = rows["level"].to_numpy(np.float64)
        fn = profile.for_pollutant(str(p))
        mid = rows["hour_s"].to_numpy(np.float64) + HOUR_S / 2
        errs = {
            "profile": y - np.array([fn(s) for s in mid]),
            "mean": y - float(train.loc[train["pollutant"] == p, "level"].mean()),
            "persistence": _persistence_errors(previous, str(p), rows),
        }
        for name, e in errs.items():
            pooled[name] += e.tolist()
            out[f"{p}.holdout_rmse_{name}"] = _rmse(e)
    for name, values in pooled.items():
        out[f"holdout_rmse_{name}"] = _rmse(np.asarray(values))
    out["holdout_skill"] = 1.0 - out["holdout_rmse_profile"] / out["holdout_rmse_mean"]
    return out


def _persistence_errors(previous: pd.Series, pollutant: str, rows: pd.DataFrame) -> FloatArray:
    keys = [(pollutant, float(h) - HOUR_S) for h in rows["hour_s"]]
    before = previous.reindex(pd.MultiIndex.from_tuples(keys)).to_numpy(np.float64)
    e = rows["level"].to_numpy(np.float64) - before
    return e[np.isfinite(e)]


def _rmse(e: FloatArray) -> float:
    return math.sqrt(float(np.mean(e**2))) if len(e) else math.nan


def _usable(frame: pd.DataFrame, space: EdgeSpace) -> pd.DataFrame:
    require_columns(frame, ("sensor_id", "pollutant", "edge_id", "value_ugm3", "time"), "readings")
    edge = frame["edge_id"].to_numpy(np.int64)
    ok = (
        frame["pollutant"].isin(space.pollutants).to_numpy()
        & (edge >= 0)
        & (edge < space.n_edges)
        & np.isfinite(frame["value_ugm3"].to_numpy(np.float64))
    )
    return frame[ok]


def _epoch_s(time: pd.Series) -> FloatArray:
    t = pd.to_datetime(time)
    t = t.dt.tz_localize("UTC") if t.dt.tz is None else t.dt.tz_convert("UTC")
    seconds = (t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return np.asarray(seconds, dtype=np.float64)
