"""Online calibration of low-cost sensors: co-located references first, else the network.

Two calibrations run side by side per (low-cost sensor, pollutant):

* **Co-location** (this module), where a reference station stands within ``radius_m``:
  recursive least squares, as below. Once it has ``min_pairs`` pairs it is used.
* **The network** (:mod:`airpath.air.network_calibration`) everywhere: a Kalman filter of
  the same affine map against a field kriged from reference and mobile readings only.
  It needs no station nearby, and reports the calibration's remaining uncertainty as the
  rows' ``bias_sd`` (log units), which the kriging uses instead of a fixed low-cost bias.

Co-location: each (low-cost sensor, pollutant) gets a bias and gain, ``reference ≈ a + b × raw``,
fitted by recursive least squares with a forgetting factor ``λ``: after ``n`` pairs the
coefficients minimise ``Σ λ^(n-i) (y_i - a - b x_i)² + λ^n δ ‖θ - θ0‖²`` with ``θ0 = (0, 1)``
(no correction) — exactly, at every step (Haykin, *Adaptive Filter Theory*, ch. 10).
``λ`` < 1 lets gain and bias follow a sensor that drifts over the day.

A low-cost reading is paired with the mean of the reference readings of the same pollutant
within ``radius_m`` (edge midpoints; same edge is distance 0) and ``window_s``. Until a
sensor has ``min_pairs`` pairs (co-located, or network updates) its readings are withheld
from the estimator, so an uncalibrated or drifting sensor cannot poison the field (with
``pass_uncalibrated`` they pass, network-calibrated as far as it goes). Reference and
mobile readings pass through unchanged.
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
from airpath.air.network_calibration import NetworkCalibration, pair_codes
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
    """Per (sensor, pollutant) RLS calibration against co-located reference readings,
    else (``use_network``) the network calibration of :class:`NetworkCalibration`."""

    space: EdgeSpace
    radius_m: float = 50.0
    window_s: float = 600.0
    forgetting: float = 0.98  # per pair; at one pair per 5 min a memory of ~4 h
    delta: float = 1.0
    min_pairs: int = 12
    pass_uncalibrated: bool = False  # True: feed raw values until calibrated
    models: dict[tuple[str, str], RecursiveLeastSquares] = field(default_factory=dict)
    _reference: ObservationBatch = field(default_factory=ObservationBatch.empty)
    use_network: bool = True
    network: NetworkCalibration | None = None

    def __post_init__(self) -> None:
        if self.use_network and self.network is None:
            self.network = NetworkCalibration(self.space)

    def __setstate__(self, state: dict[str, object]) -> None:
        """Calibrators pickled before the network calibration existed start it afresh."""
        self.__dict__.update(state)
        if "use_network" not in state:
            self.use_network = True
            self.network = NetworkCalibration(self.space)

    def learn(self, batch: ObservationBatch) -> None:
        """Pair this batch's low-cost readings with recent reference ones and update;
        update the network calibration."""
        if len(batch) == 0:
            return
        if self.network is not None:
            self.network.learn(batch)
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
        """Calibrated low-cost values (co-located if calibrated so, else by the network,
        with its ``bias_sd``); uncalibrated low-cost rows dropped; others as is."""
        values = batch.value_ugm3.copy()
        bias_sd = np.full(len(batch), np.nan) if batch.bias_sd is None else batch.bias_sd.copy()
        if self.network is not None:
            net_values, net_sd, net_count = self.network.calibrate(batch)
        else:
            net_values, net_sd, net_count = values, bias_sd, np.zeros(len(batch))
        keep = np.ones(len(batch), dtype=bool)
        low = np.flatnonzero(batch.sensor_kind == SensorKind.LOW_COST.value)
        if len(low):
            # Per (sensor, pollutant): its co-located model's (a, b) if calibrated, else NaN.
            codes, keys = pair_codes(batch.sensor_id[low], batch.pollutant[low])
            theta = np.full((len(keys), 2), np.nan)
            for k, key in enumerate(keys):
                model = self.models.get(key)
                if model is not None and model.n_learned >= self.min_pairs:
                    theta[k] = model.theta
            a, b = theta[codes, 0], theta[codes, 1]
            colocated = np.isfinite(a)
            count = net_count[low]
            network = ~colocated & (
                (count >= self.min_pairs) | (self.pass_uncalibrated & (count > 0))
            )
            values[low[colocated]] = np.maximum(
                a[colocated] + b[colocated] * values[low[colocated]], 0.0
            )
            values[low[network]] = net_values[low[network]]
            bias_sd[low[network]] = net_sd[low[network]]
            keep[low[~colocated & ~network]] = self.pass_uncalibrated
        return batch.with_values(values, bias_sd).select(keep)

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
