"""Street-level pollution estimators: one protocol, shared state helpers, three baselines.

Every estimator has the same two verbs (river's habit, batch flavour):

* ``learn(batch)`` folds an :class:`~airpath.air.observations.ObservationBatch` into its
  state (incrementally; a zero-row batch is a no-op);
* ``predict(t, horizons_min)`` returns a :class:`FieldEstimate`: per pollutant, mean and
  standard deviation in µg/m³ of shape ``(len(horizons_min), n_edges)``.

All estimators keep log-ratios ``r = log(observed / prior(edge))`` against the
network's annual-mean prior, smoothed in time per edge by :class:`EdgeSmoother`. The
baselines here forecast by persistence; the real model is
:class:`airpath.air.kriging.ResidualKriging`. Pollutants without a prior in the
:class:`EdgeSpace` (e.g. O3) are ignored.

The baselines are the methods a city team has without a street-level model:

* :class:`PriorOnly` — the annual map, whatever is read;
* :class:`NearestSensor` and :class:`InverseDistance` — the recent readings (each
  observed street's time-smoothed concentration) spread over the city: the value at the
  nearest observed street, or inverse-distance weighting of the nearby ones;
* ``InverseDistance(relative_to_prior=True)`` — a stronger hybrid: the prior times an
  inverse-distance weighting of the observed log-ratios to it. It uses the street prior,
  half of what our model does, so it measures what kriging adds over a naive spatial
  interpolation of the same residuals (``NearestSensor`` takes the flag too).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from airpath.air.observations import FloatArray, IntArray, ObservationBatch, epoch_s
from airpath.network.store import Network
from airpath.routing.field import PollutionField

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
DEFAULT_PRIOR_LOG_SD = 0.5  # hourly vs annual-mean spread: ×/÷ 1.65 at one σ
MIN_VALUE_UGM3 = 0.1  # floor before taking logs; below any instrument's detection limit
LEGACY_LOW_COST_BIAS_SD = 0.1  # the low-cost bias (log sd) of states without per-row ones


@dataclass(frozen=True)
class EdgeSpace:
    """What estimators know of the network: edge midpoints (m) and priors (µg/m³).

    ``xy_m`` has shape ``(n_edges, 2)`` in a local equirectangular projection;
    ``prior_ugm3`` maps each pollutant to an ``(n_edges,)`` array of positive values.
    """

    xy_m: FloatArray
    prior_ugm3: Mapping[str, FloatArray]

    @property
    def n_edges(self) -> int:
        return len(self.xy_m)

    @functools.cached_property
    def sites(self) -> tuple[FloatArray, IntArray]:
        """Distinct midpoints and, per edge, its site: an edge and its reverse share one,
        so interpolating at sites halves the work."""
        xy, inverse = np.unique(self.xy_m, axis=0, return_inverse=True)
        return xy, np.asarray(inverse, dtype=np.int64).reshape(-1)

    @property
    def pollutants(self) -> tuple[str, ...]:
        return tuple(self.prior_ugm3)

    @classmethod
    def from_network(cls, network: Network) -> EdgeSpace:
        """Midpoints of the tail/head chord, projected about the network's mean latitude.

        The chord midpoint is within a few metres of the arc midpoint for street edges,
        far below the covariance length scales used here; the equirectangular error is
        under 0.1 % across a city.
        """
        lon = np.asarray(network.node_lon, dtype=np.float64)
        lat = np.asarray(network.node_lat, dtype=np.float64)
        tail = np.asarray(network.edge_tail)
        head = np.asarray(network.edge_head)
        mid_lon = 0.5 * (lon[tail] + lon[head])
        mid_lat = 0.5 * (lat[tail] + lat[head])
        lat0 = math.radians(float(mid_lat.mean()))
        lon0 = float(mid_lon.mean())
        x = EARTH_RADIUS_M * math.cos(lat0) * np.radians(mid_lon - lon0)
        y = EARTH_RADIUS_M * np.radians(mid_lat - math.degrees(lat0))
        prior = np.asarray(network.edge_prior_ugm3, dtype=np.float64)
        return cls(
            np.column_stack([x, y]),
            {
                p: np.maximum(prior[k].copy(), MIN_VALUE_UGM3)
                for k, p in enumerate(network.pollutants)
            },
        )


@dataclass(frozen=True)
class PollutantEstimate:
    """One pollutant's estimate; ``freshness_s`` is the age of the newest observation used
    (``None`` when no observation was used and the estimate is the prior)."""

    mean_ugm3: FloatArray
    std_ugm3: FloatArray
    freshness_s: float | None
    n_observed_edges: int


@dataclass(frozen=True)
class FieldEstimate:
    """Per-pollutant estimates on a common time axis, as produced by ``predict``."""

    valid_at: dt.datetime
    horizons_min: tuple[float, ...]
    model_version: str
    pollutants: Mapping[str, PollutantEstimate] = field(default_factory=dict)

    def to_field(self, version: str) -> PollutionField:
        """The router's :class:`PollutionField` (validates shapes and values)."""
        n_edges = next(iter(self.pollutants.values())).mean_ugm3.shape[1]
        return PollutionField.create(
            version,
            self.valid_at,
            {p: e.mean_ugm3 for p, e in self.pollutants.items()},
            n_edges=n_edges,
            horizons_min=self.horizons_min,
            uncertainty_ugm3={p: e.std_ugm3 for p, e in self.pollutants.items()},
        )


@runtime_checkable
class Estimator(Protocol):
    """The verbs every street-level estimator implements."""

    def learn(self, batch: ObservationBatch) -> None:
        """Fold a batch of observations into the state."""

    def predict(self, t: dt.datetime, horizons_min: Sequence[float]) -> FieldEstimate:
        """Mean and std per pollutant at ``t`` plus each horizon (minutes)."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """Smoothed log-ratios of the edges with recent observations, at one time."""

    edges: IntArray
    log_ratio: FloatArray  # exponentially weighted mean of log(obs / prior)
    weight: FloatArray  # Σ exp(-age / τ): the effective number of observations, decayed
    newest_s: float  # time of the newest observation among ``edges``; -inf if none
    low_cost_share: FloatArray | None = None  # share of ``weight`` from low-cost sensors
    n_effective: FloatArray | None = None  # Kish's (Σw)² / Σw²: readings behind the mean
    mean_time_s: FloatArray | None = None  # Σ w t / Σ w: when the mean was read
    bias_sd: FloatArray | None = None  # Σ w s / Σ w of the readings' lasting error sd s


class EdgeSmoother:
    """Exponentially weighted mean of log-ratios per (pollutant, edge), updated by batch.

    After any sequence of batches, with state time ``T`` (the latest time seen) an edge
    holds ``W = Σ exp(-(T - t_i)/τ)`` and ``S = Σ exp(-(T - t_i)/τ) r_i``, exactly the batch
    sums over all observations so far, in any arrival order. ``τ = time_constant_s``.
    Beside them it keeps ``Σ w²``, ``Σ w t`` and ``Σ w s`` (``s`` a reading's lasting error
    sd, e.g. a low-cost sensor's calibration error, log units), so that a model can tell
    how many readings stand behind an edge's mean, how old they are and how much of their
    error cannot average out.
    """

    def __init__(self, space: EdgeSpace, time_constant_s: float = 900.0) -> None:
        self.space = space
        self.time_constant_s = float(time_constant_s)
        n = space.n_edges
        self.weight = {p: np.zeros(n) for p in space.pollutants}
        self.weighted_sum = {p: np.zeros(n) for p in space.pollutants}
        self.newest_s = {p: np.full(n, -np.inf) for p in space.pollutants}
        self.low_cost_weight = {p: np.zeros(n) for p in space.pollutants}
        self.weight_sq = {p: np.zeros(n) for p in space.pollutants}
        self.weighted_time_s = {p: np.zeros(n) for p in space.pollutants}
        self.bias_weight = {p: np.zeros(n) for p in space.pollutants}
        self.state_time_s = -math.inf

    def __setstate__(self, state: dict[str, object]) -> None:
        """Smoothers pickled before the extra sums existed get them as if each edge's
        weight came from one reading at its newest time, its low-cost part with the
        fixed bias those versions assumed."""
        self.__dict__.update(state)
        if "low_cost_weight" not in state:
            self.low_cost_weight = {p: np.zeros_like(w) for p, w in self.weight.items()}
        if "weight_sq" not in state:
            self.weight_sq = {p: w**2 for p, w in self.weight.items()}
            self.weighted_time_s = {
                p: w * np.where(w > 0, self.newest_s[p], 0.0) for p, w in self.weight.items()
            }
            self.bias_weight = {
                p: LEGACY_LOW_COST_BIAS_SD * w for p, w in self.low_cost_weight.items()
            }

    def learn(
        self,
        batch: ObservationBatch,
        offset: Mapping[str, float] | None = None,
        *,
        bias_sd: FloatArray | None = None,
    ) -> None:
        """Fold ``batch`` in; ``offset[p]`` is subtracted from pollutant ``p``'s log-ratios
        first (a model that keeps residuals against a moving level passes the level);
        ``bias_sd`` is each row's lasting error sd (log units; zero when not given)."""
        if len(batch) == 0:
            return
        t_new = max(self.state_time_s, float(batch.time_s.max()))
        if math.isfinite(self.state_time_s):
            decay = math.exp(-(t_new - self.state_time_s) / self.time_constant_s)
            for p in self.space.pollutants:
                for sums in (self.weight, self.weighted_sum, self.low_cost_weight):
                    sums[p] *= decay
                self.weighted_time_s[p] *= decay
                self.bias_weight[p] *= decay
                self.weight_sq[p] *= decay**2
        self.state_time_s = t_new
        for p in self.space.pollutants:
            rows = batch.pollutant == p
            if not rows.any():
                continue
            e = batch.edge_id[rows]
            r = self.log_ratio(p, e, batch.value_ugm3[rows])
            if offset is not None:
                r = r - offset.get(p, 0.0)
            t = batch.time_s[rows]
            w = np.exp(-(t_new - t) / self.time_constant_s)
            np.add.at(self.weight[p], e, w)
            np.add.at(self.weighted_sum[p], e, w * r)
            np.add.at(self.low_cost_weight[p], e, w * (batch.sensor_kind[rows] == "low_cost"))
            np.add.at(self.weight_sq[p], e, w**2)
            np.add.at(self.weighted_time_s[p], e, w * t)
            if bias_sd is not None:
                np.add.at(self.bias_weight[p], e, w * bias_sd[rows])
            np.maximum.at(self.newest_s[p], e, t)

    def log_ratio(self, pollutant: str, edges: IntArray, value_ugm3: FloatArray) -> FloatArray:
        prior = self.space.prior_ugm3[pollutant][edges]
        return np.log(np.maximum(value_ugm3, MIN_VALUE_UGM3) / prior)

    def reset(self, pollutant: str) -> None:
        """Forget one pollutant's history (after a detected drift)."""
        for sums in (
            self.weight,
            self.weighted_sum,
            self.low_cost_weight,
            self.weight_sq,
            self.weighted_time_s,
            self.bias_weight,
        ):
            sums[pollutant][:] = 0.0
        self.newest_s[pollutant][:] = -np.inf

    def snapshot(self, pollutant: str, t_s: float, staleness_s: float) -> Snapshot:
        """Edges observed within ``staleness_s`` before ``t_s``, decayed to ``t_s``."""
        newest = self.newest_s[pollutant]
        edges = np.flatnonzero((newest > t_s - staleness_s) & (newest <= t_s + staleness_s))
        if len(edges) == 0:
            return Snapshot(edges, np.zeros(0), np.zeros(0), -math.inf)
        w = np.maximum(self.weight[pollutant][edges], 1e-300)
        mean = self.weighted_sum[pollutant][edges] / w
        decay = math.exp(-max(t_s - self.state_time_s, 0.0) / self.time_constant_s)
        share = self.low_cost_weight[pollutant][edges] / w
        n_eff = w**2 / np.maximum(self.weight_sq[pollutant][edges], 1e-300)
        when = self.weighted_time_s[pollutant][edges] / w
        bias = self.bias_weight[pollutant][edges] / w
        return Snapshot(
            edges, mean, w * decay, float(newest[edges].max()), share, n_eff, when, bias
        )


def lognormal_std(mean: FloatArray, log_var: FloatArray | float) -> FloatArray:
    """Std of a lognormal variable from its mean and log-space variance."""
    return mean * np.sqrt(np.expm1(log_var))


def _freshness(t_s: float, snap: Snapshot) -> float | None:
    return max(t_s - snap.newest_s, 0.0) if len(snap.edges) else None


class _Baseline:
    """Shared machinery of the persistence baselines: state, prior, versioning."""

    def __init__(
        self,
        space: EdgeSpace,
        *,
        time_constant_s: float = 900.0,
        staleness_s: float = 3600.0,
        prior_log_sd: float = DEFAULT_PRIOR_LOG_SD,
        relative_to_prior: bool = False,
    ) -> None:
        """``relative_to_prior`` spreads the observed log-ratios to the prior and
        multiplies the prior by the result, instead of spreading the concentrations."""
        self.space = space
        self.smoother = EdgeSmoother(space, time_constant_s)
        self.staleness_s = float(staleness_s)
        self.prior_log_sd = float(prior_log_sd)
        self.relative_to_prior = bool(relative_to_prior)
        self.n_batches = 0

    def learn(self, batch: ObservationBatch) -> None:
        if len(batch) == 0:
            return
        self.smoother.learn(batch)
        self.n_batches += 1

    def predict(self, t: dt.datetime, horizons_min: Sequence[float]) -> FieldEstimate:
        t_s = epoch_s(t)
        out = {}
        for p in self.space.pollutants:
            snap = self.smoother.snapshot(p, t_s, self.staleness_s)
            prior = self.space.prior_ugm3[p]
            if not len(snap.edges):
                mean = prior
            elif self.relative_to_prior:
                mean = prior * np.exp(self._interpolate(snap, snap.log_ratio))
            else:  # the observed streets' concentrations, spread
                mean = self._interpolate(snap, prior[snap.edges] * np.exp(snap.log_ratio))
            std = lognormal_std(mean, self.prior_log_sd**2)
            n_h = len(horizons_min)
            out[p] = PollutantEstimate(
                np.tile(mean, (n_h, 1)),
                np.tile(std, (n_h, 1)),
                _freshness(t_s, snap),
                len(snap.edges),
            )
        version = f"{type(self).__name__}/{self.n_batches}"
        return FieldEstimate(t, tuple(float(h) for h in horizons_min), version, out)

    def _interpolate(self, snap: Snapshot, values: FloatArray) -> FloatArray:
        """``values`` (one per observed edge of ``snap``) spread to every edge."""
        raise NotImplementedError


class PriorOnly(_Baseline):
    """The annual-mean prior, whatever is observed: the floor every model must beat.

    >>> space = EdgeSpace(np.zeros((2, 2)), {"no2": np.array([20.0, 40.0])})
    >>> est = PriorOnly(space).predict(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), [0, 15])
    >>> est.pollutants["no2"].mean_ugm3.tolist()
    [[20.0, 40.0], [20.0, 40.0]]
    """

    def learn(self, batch: ObservationBatch) -> None:
        self.n_batches += len(batch) > 0  # the version moves; the state does not


class NearestSensor(_Baseline):
    """The value at the nearest observed edge (Euclidean)."""

    def _interpolate(self, snap: Snapshot, values: FloatArray) -> FloatArray:
        tree = cKDTree(self.space.xy_m[snap.edges])
        _, idx = tree.query(self.space.xy_m, k=1)
        return values[idx]


class InverseDistance(_Baseline):
    """Inverse-distance-weighted (power ``power``) mean of the ``n_neighbours`` nearest
    observed edges' values."""

    def __init__(
        self,
        space: EdgeSpace,
        *,
        power: float = 2.0,
        n_neighbours: int = 12,
        relative_to_prior: bool = False,
        **kw: float,
    ) -> None:
        super().__init__(space, relative_to_prior=relative_to_prior, **kw)
        self.power = float(power)
        self.n_neighbours = int(n_neighbours)

    def _interpolate(self, snap: Snapshot, values: FloatArray) -> FloatArray:
        k = min(self.n_neighbours, len(snap.edges))
        tree = cKDTree(self.space.xy_m[snap.edges])
        d, idx = tree.query(self.space.xy_m, k=k)
        d, idx = d.reshape(len(d), k), idx.reshape(len(idx), k)
        w = 1.0 / np.maximum(d, 1.0) ** self.power  # 1 m floor: an observed edge is exact
        return (w * values[idx]).sum(axis=1) / w.sum(axis=1)


def as_float_array(a: npt.ArrayLike) -> FloatArray:
    return np.asarray(a, dtype=np.float64)
