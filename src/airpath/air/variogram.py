"""The empirical variogram of street residuals and its Matérn-3/2 fit (see
:mod:`airpath.air.training` for how the pair sums are reduced from the lake)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from airpath.air.frames import require_columns
from airpath.air.observations import FloatArray, IntArray
from airpath.errors import InputError

LENGTH_BOUNDS_M = (100.0, 10_000.0)
MIN_PAIRS_PER_BIN = 30
PAIR_SUM_COLUMNS = ("n_pairs", "sum_distance_m", "sum_semivariance", "sum_inv_n")
SQRT3 = math.sqrt(3.0)


def matern32(distance_m: FloatArray, variance: float, length_scale_m: float) -> FloatArray:
    """Matérn-3/2 covariance ``σ² (1 + √3 d/ℓ) exp(-√3 d/ℓ)`` (Rasmussen & Williams eq. 4.17)."""
    s = SQRT3 * distance_m / length_scale_m
    return variance * (1.0 + s) * np.exp(-s)


@dataclass(frozen=True, eq=False)
class VariogramBins:
    """Binned semivariance (log units²) with mean distance and pairs per kept bin."""

    distance_m: FloatArray
    semivariance: FloatArray
    n_pairs: FloatArray
    total_pairs: int  # including bins dropped for having too few pairs
    mean_inv_n: float  # pair average of ½(1/n_i + 1/n_j); nan without pairs


@dataclass(frozen=True)
class Matern32Fit:
    """``γ(d) = nugget_var + sill_var (1 - ρ(d/ℓ))``; ``rmse`` pair-weighted, log units²."""

    nugget_var: float
    sill_var: float
    length_scale_m: float
    rmse: float

    def semivariance(self, distance_m: FloatArray) -> FloatArray:
        d = np.asarray(distance_m, dtype=np.float64)
        return self.nugget_var + self.sill_var - matern32(d, self.sill_var, self.length_scale_m)


def pair_sums(
    cells: pd.DataFrame, xy_m: FloatArray, *, max_lag_m: float, n_bins: int
) -> pd.DataFrame:
    """Per (pollutant, distance bin): the sums of :data:`PAIR_SUM_COLUMNS` over pairs of
    distinct edges of one (pollutant, hour). ``cells``: pollutant, hour_s, edge_id, n, mean."""
    require_columns(cells, ("pollutant", "hour_s", "edge_id", "n", "mean"), "cells")
    acc: dict[str, FloatArray] = {}
    for (p, _), g in cells.groupby(["pollutant", "hour_s"], sort=False):
        if len(g) < 2:
            continue
        i, j = np.triu_indices(len(g), 1)
        xy = xy_m[g["edge_id"].to_numpy(np.int64)]
        m, n = g["mean"].to_numpy(np.float64), g["n"].to_numpy(np.float64)
        rows = acc.setdefault(str(p), np.zeros((4, n_bins)))
        i, j, b = _add_pair_sums(rows, xy, m, i, j, max_lag_m)
        rows[3] += np.bincount(b, weights=0.5 * (1.0 / n[i] + 1.0 / n[j]), minlength=n_bins)
    frames = [
        pd.DataFrame(
            {"pollutant": p, "bin": np.arange(n_bins)} | dict(zip(PAIR_SUM_COLUMNS, a, strict=True))
        )
        for p, a in acc.items()
    ]
    empty = pd.DataFrame(columns=["pollutant", "bin", *PAIR_SUM_COLUMNS])
    out = pd.concat(frames, ignore_index=True) if frames else empty
    return out[out["n_pairs"] > 0].reset_index(drop=True)


def _add_pair_sums(
    rows: FloatArray, xy: FloatArray, m: FloatArray, i: IntArray, j: IntArray, max_lag_m: float
) -> tuple[IntArray, IntArray, IntArray]:
    """Add the pairs ``(i, j)`` closer than ``max_lag_m`` to ``rows[:3]``: per distance bin
    (``rows.shape[1]`` of them) the count, ``Σd`` and ``Σ½(m_i - m_j)²``. Returns the
    pairs kept and their bins."""
    n_bins = rows.shape[1]
    d = np.sqrt((xy[i, 0] - xy[j, 0]) ** 2 + (xy[i, 1] - xy[j, 1]) ** 2)
    keep = d < max_lag_m
    i, j, d = i[keep], j[keep], d[keep]
    b = np.minimum(np.floor(d / (max_lag_m / n_bins)).astype(np.int64), n_bins - 1)
    for k, w in enumerate((np.ones_like(d), d, 0.5 * (m[i] - m[j]) ** 2)):
        rows[k] += np.bincount(b, weights=w, minlength=n_bins)
    return i, j, b


def variogram_from_sums(
    sums: pd.DataFrame, pollutant: str | None = None, *, min_pairs: int = MIN_PAIRS_PER_BIN
) -> VariogramBins:
    """The binned semivariance of one pollutant, or pooled over all (``None``)."""
    rows = sums if pollutant is None else sums[sums["pollutant"] == pollutant]
    g = rows.groupby("bin")[list(PAIR_SUM_COLUMNS)].sum().sort_index()
    n = g["n_pairs"].to_numpy(np.float64)
    total = float(n.sum())
    keep = n >= max(min_pairs, 1)
    return VariogramBins(
        g["sum_distance_m"].to_numpy(np.float64)[keep] / n[keep],
        g["sum_semivariance"].to_numpy(np.float64)[keep] / n[keep],
        n[keep],
        round(total),
        float(g["sum_inv_n"].sum()) / total if total else math.nan,
    )


def empirical_variogram(
    cells: pd.DataFrame,
    xy_m: FloatArray,
    *,
    max_lag_m: float,
    n_bins: int = 15,
    min_pairs: int = MIN_PAIRS_PER_BIN,
) -> VariogramBins:
    """Binned semivariance of cell means, pooled over pollutants (see the module doc)."""
    sums = pair_sums(cells, xy_m, max_lag_m=max_lag_m, n_bins=n_bins)
    return variogram_from_sums(sums, min_pairs=min_pairs)


def fit_matern32(
    bins: VariogramBins, *, length_bounds_m: tuple[float, float] = LENGTH_BOUNDS_M
) -> Matern32Fit:
    """Nugget, sill and length scale by Cressie's weighted least squares (module doc),
    started from four length scales across the bounds; the lowest cost wins."""
    d, g, n = bins.distance_m, bins.semivariance, bins.n_pairs
    top = float(g.max()) if len(g) else 0.0
    if len(g) < 3 or not top > 0:
        raise InputError(f"a variogram fit needs 3 bins with a positive semivariance, got {g}")
    w = np.sqrt(n / n.sum())
    lo, hi = length_bounds_m

    def residuals(theta: FloatArray) -> FloatArray:
        c0, s2, ell = theta
        model = c0 + s2 - matern32(d, s2, ell)
        return w * (g / np.maximum(model, 1e-9 * top) - 1.0)

    bounds = ([0.0, 1e-6 * top, lo], [2.0 * top, 2.0 * top, hi])
    best = None
    for ell0 in np.geomspace(lo * 1.5, hi / 1.5, 4):
        x0 = [min(0.5 * float(g[0]), top), max(top - 0.5 * float(g[0]), 0.1 * top), ell0]
        res = least_squares(residuals, x0, bounds=bounds, x_scale=[top, top, 1000.0])
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    c0, s2, ell = (float(v) for v in best.x)
    fit = Matern32Fit(c0, s2, ell, math.nan)
    rmse = math.sqrt(float((n * (g - fit.semivariance(d)) ** 2).sum() / n.sum()))
    return dataclasses.replace(fit, rmse=rmse)


@dataclass
class OnlineVariogram:
    """A variogram of an estimator's own street residuals, kept up to date as it learns.

    :meth:`add` takes one snapshot of smoothed edge residuals (log units) and their noise
    variances as the estimator states them; pairs of distinct edges closer than
    ``max_lag_m`` enter the binned sums of Matheron's estimator (those of :func:`pair_sums`),
    and the mean stated noise variance its own sum. Sums already held are first scaled by
    ``0.5 ** (Δt / half_life_s)``, so the fit follows the last hours' air and sensors.
    :meth:`fit` gives the Matérn-3/2 fit of :func:`fit_matern32` and the ratio of its
    nugget to the mean stated noise variance (how far the noise model is off), or None
    while there are under three bins of ``min_pairs`` or the length scale sits on a bound
    (not identified by the lags observed; as :mod:`airpath.air.training` does).
    """

    max_lag_m: float
    n_bins: int = 15
    half_life_s: float = 6.0 * 3600.0
    min_pairs: int = MIN_PAIRS_PER_BIN
    sums: FloatArray = dataclasses.field(default_factory=lambda: np.zeros((3, 0)))
    noise_sum: float = 0.0
    noise_weight: float = 0.0
    time_s: float = -math.inf

    def add(self, t_s: float, xy_m: FloatArray, values: FloatArray, noise_var: FloatArray) -> None:
        if self.sums.shape[1] != self.n_bins:
            self.sums = np.zeros((3, self.n_bins))
        if math.isfinite(self.time_s):
            keep = 0.5 ** (max(t_s - self.time_s, 0.0) / self.half_life_s)
            self.sums *= keep
            self.noise_sum *= keep
            self.noise_weight *= keep
        self.time_s = max(self.time_s, t_s)
        if len(values) < 2:
            return
        pairs = cKDTree(xy_m).query_pairs(self.max_lag_m, output_type="ndarray")
        _add_pair_sums(self.sums, xy_m, values, pairs[:, 0], pairs[:, 1], self.max_lag_m)
        self.noise_sum += float(np.mean(noise_var))
        self.noise_weight += 1.0

    def bins(self) -> VariogramBins:
        n = self.sums[0] if self.sums.shape[1] else np.zeros(0)
        keep = n >= max(self.min_pairs, 1)
        total = float(n.sum())
        return VariogramBins(
            self.sums[1][keep] / n[keep],
            self.sums[2][keep] / n[keep],
            n[keep],
            round(total),
            math.nan,
        )

    def fit(self) -> tuple[Matern32Fit, float] | None:
        bins = self.bins()
        if len(bins.n_pairs) < 3 or not bins.semivariance.max() > 0 or self.noise_weight <= 0:
            return None
        fit = fit_matern32(bins)
        lo, hi = LENGTH_BOUNDS_M
        if not lo * 1.01 < fit.length_scale_m < hi / 1.01:
            return None
        return fit, fit.nugget_var / max(self.noise_sum / self.noise_weight, 1e-12)
