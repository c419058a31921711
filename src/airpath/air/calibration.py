"""Online calibration of low-cost sensors against nearby reference stations.

Each (low-cost sensor, pollutant) gets a bias and gain, ``reference ≈ a + b × raw``,
fitted by recursive least squares with a forgetting factor ``λ``: after ``n`` pairs the
coefficients minimise ``Σ λ^(n-i) (y_i - a - b x_i)² + λ^n δ ‖θ - θ0‖²`` with ``θ0 = (0, 1)``
(no correction) — exactly, at every step (Haykin, *Adaptive Filter Theory*, ch. 10).
``λ`` < 1 lets gain and bias follow a sensor that drifts over the day.

A low-cost reading is paired with the mean of the reference readings of the same pollutant
within ``radius_m`` (edge midpoints; same edge is distance 0) and ``window_s``. Until a
sensor has ``min_pairs`` pairs its readings are withheld from the estimator, so an
uncalibrated or drifting sensor cannot poison the field. Reference and mobile readings
pass through unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit
from scipy.spatial import cKDTree

from airpath.air.estimate import EdgeSpace, Estimator, FieldEstimate
from airpath.air.observations import FloatArray, ObservationBatch
from airpath.air.schema import SensorKind


class RecursiveLeastSquares:
    """Exponentially weighted recursive least squares (river verbs: learn_one/predict_one).

    >>> rls = RecursiveLeastSquares(2, forgetting=1.0, delta=1e-9)
    >>> for x in (1.0, 2.0, 3.0):
    ...     rls.learn_one(np.array([1.0, x]), 2.0 + 3.0 * x)
    >>> np.round(rls.theta, 6).tolist()
    [2.0, 3.0]
    """

    def __init__(
        self,
        n_features: int,
        *,
        forgetting: float = 0.98,
        delta: float = 1.0,
        theta0: npt.ArrayLike | None = None,
    ) -> None:
        self.forgetting = float(forgetting)
        self.delta = float(delta)
        self.theta = (
            np.zeros(n_features) if theta0 is None else np.asarray(theta0, dtype=np.float64).copy()
        )
        self.P = np.eye(n_features) / self.delta  # inverse of the weighted Gram matrix
        self.n_learned = 0

    def learn_one(self, x: FloatArray, y: float) -> None:
        Px = self.P @ x
        gain = Px / (self.forgetting + x @ Px)
        self.theta = self.theta + gain * (y - x @ self.theta)
        self.P = (self.P - np.outer(gain, Px)) / self.forgetting
        self.P = 0.5 * (self.P + self.P.T)  # keep symmetric against round-off
        self.n_learned += 1

    def predict_one(self, x: FloatArray) -> float:
        return float(x @ self.theta)


@dataclass
class SensorCalibrator:
    """Per (sensor, pollutant) RLS calibration against co-located reference readings."""

    space: EdgeSpace
    radius_m: float = 50.0
    window_s: float = 600.0
    forgetting: float = 0.98  # per pair; at one pair per 5 min a memory of ~4 h
    delta: float = 1.0
    min_pairs: int = 12
    pass_uncalibrated: bool = False  # True: feed raw values until calibrated
    models: dict[tuple[str, str], RecursiveLeastSquares] = field(default_factory=dict)
    _reference: ObservationBatch = field(default_factory=ObservationBatch.empty)

    def learn(self, batch: ObservationBatch) -> None:
        """Pair this batch's low-cost readings with recent reference ones and update."""
        if len(batch) == 0:
            return
        ref = self._remember(batch)
        low = np.flatnonzero(batch.sensor_kind == SensorKind.LOW_COST.value)
        if len(low) == 0 or len(ref) == 0:
            return
        low = low[np.argsort(batch.time_s[low], kind="stable")]  # RLS follows time
        target = self._reference_means(batch, low, ref)
        paired = np.isfinite(target)
        rows, target = low[paired], target[paired]
        if len(rows) == 0:
            return
        keys = list(
            zip(batch.sensor_id[rows].tolist(), batch.pollutant[rows].tolist(), strict=True)
        )
        index: dict[tuple[str, str], int] = {}
        key_idx = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))
        models = []
        for key in index:
            model = self.models.get(key)
            if model is None:
                model = self.models[key] = RecursiveLeastSquares(
                    2, forgetting=self.forgetting, delta=self.delta, theta0=(0.0, 1.0)
                )
            models.append(model)
        theta = np.array([m.theta for m in models], dtype=np.float64)
        P = np.array([m.P for m in models], dtype=np.float64)
        count = np.array([m.n_learned for m in models], dtype=np.int64)
        _rls_updates(key_idx, batch.value_ugm3[rows], target, theta, P, count, self.forgetting)
        for k, model in enumerate(models):
            model.theta, model.P, model.n_learned = theta[k].copy(), P[k].copy(), int(count[k])

    def _reference_means(
        self, batch: ObservationBatch, low: npt.NDArray[np.int64], ref: ObservationBatch
    ) -> FloatArray:
        """Per low-cost row, the mean of the reference readings of its pollutant within
        ``radius_m`` and ``window_s`` (NaN when there is none)."""
        out = np.full(len(low), np.nan)
        edges, inverse = np.unique(batch.edge_id[low], return_inverse=True)
        near = cKDTree(self.space.xy_m[ref.edge_id]).query_ball_point(
            self.space.xy_m[edges], r=self.radius_m
        )
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(edges) + 1))
        for u in range(len(edges)):
            j = np.asarray(near[u], dtype=np.int64)
            if len(j) == 0:
                continue
            at = order[bounds[u] : bounds[u + 1]]  # positions in `low` on this edge
            i = low[at]
            ok = (ref.pollutant[j][None, :] == batch.pollutant[i][:, None]) & (
                np.abs(ref.time_s[j][None, :] - batch.time_s[i][:, None]) <= self.window_s
            )
            n = ok.sum(axis=1)
            total = (ok * ref.value_ugm3[j][None, :]).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[at] = np.where(n > 0, total / n, np.nan)
        return out

    def transform(self, batch: ObservationBatch) -> ObservationBatch:
        """Calibrated low-cost values; uncalibrated low-cost rows dropped; others as is."""
        values = batch.value_ugm3.copy()
        keep = np.ones(len(batch), dtype=bool)
        low = np.flatnonzero(batch.sensor_kind == SensorKind.LOW_COST.value)
        cache: dict[tuple[str, str], RecursiveLeastSquares | None] = {}
        for i, sensor, pollutant in zip(
            low.tolist(), batch.sensor_id[low].tolist(), batch.pollutant[low].tolist(), strict=True
        ):
            key = (sensor, pollutant)
            model = cache[key] if key in cache else cache.setdefault(key, self.models.get(key))
            if model is None or model.n_learned < self.min_pairs:
                keep[i] = self.pass_uncalibrated
            else:
                a, b = model.theta
                values[i] = max(float(a + b * values[i]), 0.0)
        return batch.with_values(values).select(keep)

    def _remember(self, batch: ObservationBatch) -> ObservationBatch:
        """Reference readings of the last ``window_s`` (this batch included)."""
        new = batch.select(batch.sensor_kind == SensorKind.REFERENCE.value)
        old = self._reference
        merged = ObservationBatch(
            *(np.concatenate([getattr(old, c), getattr(new, c)]) for c in _COLUMNS)
        )
        horizon = float(batch.time_s.max()) - self.window_s
        self._reference = merged.select(merged.time_s >= horizon)
        return self._reference


@njit(cache=True)
def _rls_updates(
    key_idx: npt.NDArray[np.int64],
    x: FloatArray,
    y: FloatArray,
    theta: FloatArray,
    P: FloatArray,
    count: npt.NDArray[np.int64],
    lam: float,
) -> None:
    """:meth:`RecursiveLeastSquares.learn_one` with features ``(1, x)`` for each row in
    order, on per-key state arrays ``theta (k, 2)``, ``P (k, 2, 2)``, ``count (k,)``."""
    for r in range(len(key_idx)):
        k = key_idx[r]
        x1 = x[r]
        px0 = P[k, 0, 0] + P[k, 0, 1] * x1
        px1 = P[k, 1, 0] + P[k, 1, 1] * x1
        denom = lam + (px0 + x1 * px1)
        g0 = px0 / denom
        g1 = px1 / denom
        err = y[r] - (theta[k, 0] + theta[k, 1] * x1)
        theta[k, 0] += g0 * err
        theta[k, 1] += g1 * err
        p00 = (P[k, 0, 0] - g0 * px0) / lam
        p01 = (P[k, 0, 1] - g0 * px1) / lam
        p10 = (P[k, 1, 0] - g1 * px0) / lam
        p11 = (P[k, 1, 1] - g1 * px1) / lam
        P[k, 0, 0] = p00
        P[k, 1, 1] = p11
        P[k, 0, 1] = P[k, 1, 0] = 0.5 * (p01 + p10)
        count[k] += 1


_COLUMNS = ("edge_id", "time_s", "pollutant", "value_ugm3", "sensor_id", "sensor_kind")


class CalibratedEstimator:
    """Any :class:`Estimator` fed through a :class:`SensorCalibrator` (same verbs)."""

    def __init__(self, estimator: Estimator, calibrator: SensorCalibrator) -> None:
        self.estimator = estimator
        self.calibrator = calibrator

    def learn(self, batch: ObservationBatch) -> None:
        if len(batch) == 0:
            return
        self.calibrator.learn(batch)
        self.estimator.learn(self.calibrator.transform(batch))

    def predict(self, t: dt.datetime, horizons_min: Sequence[float]) -> FieldEstimate:
        return self.estimator.predict(t, horizons_min)
