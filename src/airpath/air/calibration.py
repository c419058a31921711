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
        tree = cKDTree(self.space.xy_m[ref.edge_id])
        near = tree.query_ball_point(self.space.xy_m[batch.edge_id[low]], r=self.radius_m)
        for i in low[np.argsort(batch.time_s[low], kind="stable")]:
            j = np.asarray(near[int(np.searchsorted(low, i))], dtype=np.int64)
            ok = j[
                (ref.pollutant[j] == batch.pollutant[i])
                & (np.abs(ref.time_s[j] - batch.time_s[i]) <= self.window_s)
            ]
            if len(ok) == 0:
                continue
            key = (str(batch.sensor_id[i]), str(batch.pollutant[i]))
            model = self.models.get(key)
            if model is None:
                model = self.models[key] = RecursiveLeastSquares(
                    2, forgetting=self.forgetting, delta=self.delta, theta0=(0.0, 1.0)
                )
            model.learn_one(np.array([1.0, batch.value_ugm3[i]]), float(ref.value_ugm3[ok].mean()))

    def transform(self, batch: ObservationBatch) -> ObservationBatch:
        """Calibrated low-cost values; uncalibrated low-cost rows dropped; others as is."""
        values = batch.value_ugm3.copy()
        keep = np.ones(len(batch), dtype=bool)
        for i in np.flatnonzero(batch.sensor_kind == SensorKind.LOW_COST.value):
            model = self.models.get((str(batch.sensor_id[i]), str(batch.pollutant[i])))
            if model is None or model.n_learned < self.min_pairs:
                keep[i] = self.pass_uncalibrated
            else:
                values[i] = max(model.predict_one(np.array([1.0, values[i]])), 0.0)
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
