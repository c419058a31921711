"""Calibration of low-cost sensors against the rest of the network, no co-location needed.

A low-cost sensor reads ``raw ≈ g × c + o`` (gain ``g``, offset ``o`` that drifts), so
per (sensor, pollutant) we track the inverse map ``c ≈ a + b × raw`` (µg/m³) with a
Kalman filter whose state ``θ = (a, b)`` is a random walk (Harvey, *Forecasting,
Structural Time Series Models and the Kalman Filter*, 1989, ch. 3). What it is
calibrated against, and how it is kept from learning the wrong thing:

* **The anchor.** A :class:`~airpath.air.kriging.ResidualKriging` fed only the readings of
  unbiased instruments (reference stations and mobile sensors), never a low-cost one.
  Each batch, at each low-cost sensor's edge it gives the city-wide level and the kriged
  street residual. Of the residual only what the *data* say is used (the likelihood
  left after dividing out its prior ``N(0, σ_z²)``, see :meth:`NetworkCalibration._anchor_data`):
  the prior map is the same at every batch and would otherwise be counted again and
  again, pulling every sensor onto it. Hence ``(m, v)`` in log units, the lognormal mean
  ``y = prior × exp(m + v/2)`` and variance ``R = y² (exp(v) - 1)`` (µg/m³). One update
  per batch and key pairs ``y`` with the batch mean ``x̄`` of the sensor's raw values.
  Where the unbiased readings say little (kriging variance above ``σ_z²/2``) there is no
  update; near a reference station, or when a bike rides by, ``R`` is small and the
  calibration learns. No station has to stand within metres of the sensor.
* **Correlated targets.** Successive anchor predictions share most of their error (the
  same smoothed readings, the same unseen street), so each update counts as
  ``Δt / correlation_s`` of an independent one: ``R`` is inflated by
  ``max(1, correlation_s / Δt)``, ``Δt`` the time since the key's previous update.
* **Robustness.** An incident at the sensor's street is invisible to the anchor and looks
  like a bias. The innovation, judged against its own sd (before the inflation), is
  weighted by Huber's rule (Huber 1964, *Ann. Math. Statist.* 35:73-101): beyond
  ``huber_k`` sd its variance is inflated so that the step is about that of a
  ``huber_k``-sd innovation. With the small process noise (offsets move a few per cent of
  the typical level per day) an hour-long ×2.5 incident moves the calibration by a few
  per cent, and the calibrated readings keep showing most of it (tests).

The prior ``a ~ N(0, (offset_sd_rel × typical)²)``, ``b ~ N(1, gain_sd²)``, with
``typical`` the pollutant's median prior over the network: uncalibrated units of
commercial platforms show gains of 0.8-1.3 and offsets of a few µg/m³ (Castell et al.
2017, *Environment International* 99:293-302).

The output is the calibrated value ``a + b x`` and its lasting error, the sd of
``a + b x`` under the posterior ``P`` divided by the value (log units), which the kriging
uses in place of a fixed low-cost bias (see ``ObservationBatch.bias_sd``).

>>> space = EdgeSpace(np.array([[0.0, 0.0], [30.0, 0.0]]), {"no2": np.array([20.0, 20.0])})
>>> cal = NetworkCalibration(space)
>>> for k in range(96):  # a reference station beside a sensor reading 1.2 × truth + 3
...     t, c = 1_714_521_600.0 + 300.0 * k, 20.0 + 10.0 * np.sin(k / 10)
...     cal.learn(ObservationBatch.create([0, 1], [t, t], "no2", [c, 1.2 * c + 3.0],
...                                       ["ref", "lc"], ["reference", "low_cost"]))
>>> value, sd, known = cal.calibrate(ObservationBatch.create(1, t, "no2", 1.2 * 25.0 + 3.0,
...                                                          "lc", "low_cost"))
>>> bool(abs(value[0] - 25.0) < 1.5 and sd[0] < 0.1 and known[0] == 96)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from numba import njit

from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import KrigingParams, ResidualKriging
from airpath.air.observations import FloatArray, IntArray, ObservationBatch
from airpath.air.schema import SensorKind

DAY_S = 86_400.0


@dataclass(frozen=True)
class NetworkCalibrationParams:
    """Parameters of :class:`NetworkCalibration`; the defaults and why.

    * ``offset_sd_rel`` = 0.15 and ``gain_sd`` = 0.2: the prior spread of an uncalibrated
      unit's offset (× the pollutant's typical level: a few µg/m³) and gain (0.8-1.3).
    * ``offset_step_rel_per_day`` = 0.1 and ``gain_step_per_day`` = 0.02: random-walk
      sd per day; electrochemical and optical cells drift by a few µg/m³ a day with
      temperature and ageing. Small enough that hours of evidence are needed to move.
    * ``correlation_s`` = 1800: the anchor's error at a site decorrelates over about
      half an hour (its street residuals are smoothed over 15 min and a passing bike's
      readings stay in them for as long).
    * ``huber_k`` = 1.345: innovations beyond 1.345 sd count as 1.345 sd (incidents,
      outliers); the classical choice, 95 % efficient when the errors are Gaussian.
    * ``max_bias_sd`` = 1: the lasting error reported for near-zero values is capped.
    """

    offset_sd_rel: float = 0.15
    gain_sd: float = 0.2
    offset_step_rel_per_day: float = 0.1
    gain_step_per_day: float = 0.02
    correlation_s: float = 1800.0
    huber_k: float = 1.345
    max_bias_sd: float = 1.0


class AffineKalman:
    """Random-walk Kalman filter of ``θ = (a, b)`` in ``y = a + b x + ε`` (river verbs).

    >>> kf = AffineKalman(np.array([0.0, 1.0]), np.diag([100.0, 1.0]), 0.0)
    >>> for x in (10.0, 20.0, 30.0, 40.0):
    ...     _ = kf.learn_one(x, 5.0 + 0.5 * x, 1e-6)
    >>> np.round(kf.theta, 3).tolist()
    [5.0, 0.5]
    """

    def __init__(self, theta: FloatArray, cov: FloatArray, time_s: float) -> None:
        self.theta = np.asarray(theta, dtype=np.float64).copy()
        self.P = np.asarray(cov, dtype=np.float64).copy()
        self.time_s = float(time_s)
        self.learned_s = -math.inf  # time of the last update
        self.n_learned = 0

    def __getstate__(self) -> tuple[list[float], list[float], float, float, int]:
        """Plain numbers: the job checkpoints thousands of these every batch, and a
        pickled array costs ten times a pickled list of its two or four floats."""
        return (
            self.theta.tolist(),
            self.P.ravel().tolist(),
            self.time_s,
            self.learned_s,
            self.n_learned,
        )

    def __setstate__(self, state: tuple[list[float], list[float], float, float, int]) -> None:
        theta, cov, self.time_s, self.learned_s, self.n_learned = state
        self.theta = np.array(theta, dtype=np.float64)
        self.P = np.array(cov, dtype=np.float64).reshape(2, 2)

    def advance(self, t_s: float, step_var_per_s: FloatArray) -> None:
        """Let the state wander from its last time to ``t_s`` (never backwards)."""
        if t_s > self.time_s:
            self.P = self.P + np.diag(step_var_per_s * (t_s - self.time_s))
            self.time_s = t_s

    def learn_one(
        self, x: float, y: float, r: float, huber_k: float = math.inf, inflate: float = 1.0
    ) -> float:
        """Update with ``y`` observed at ``x`` with variance ``r``, counted as ``1 /
        inflate`` of an independent observation; return the Huber weight used (1: a plain
        Kalman update). The innovation is judged against its own sd, before inflation."""
        h = np.array([1.0, x])
        Ph = self.P @ h
        innovation = y - float(h @ self.theta)
        z = abs(innovation) / math.sqrt(float(h @ Ph) + r)
        weight = 1.0 if z <= huber_k else huber_k / z
        gain = Ph / (float(h @ Ph) + r * inflate / weight)
        self.theta = self.theta + gain * innovation
        self.P = self.P - np.outer(gain, Ph)
        self.P = 0.5 * (self.P + self.P.T)  # keep symmetric against round-off
        self.n_learned += 1
        self.learned_s = self.time_s
        return weight

    def predict_one(self, x: float) -> tuple[float, float]:
        """``a + b x`` and its variance under the posterior."""
        h = np.array([1.0, x])
        return float(h @ self.theta), float(h @ self.P @ h)


class NetworkCalibration:
    """Per (low-cost sensor, pollutant) affine calibration against an anchor field
    learnt from reference and mobile readings only (module docstring)."""

    def __init__(
        self,
        space: EdgeSpace,
        params: NetworkCalibrationParams | None = None,
        anchor_params: KrigingParams | None = None,
    ) -> None:
        self.space = space
        self.params = params or NetworkCalibrationParams()
        self.anchor = ResidualKriging(space, anchor_params, horizons_min=())
        self.typical_ugm3 = {p: float(np.median(v)) for p, v in space.prior_ugm3.items()}
        self.filters: dict[tuple[str, str], AffineKalman] = {}

    def learn(self, batch: ObservationBatch) -> None:
        """Fold the unbiased rows into the anchor, then update each low-cost key once."""
        if len(batch) == 0:
            return
        low = batch.sensor_kind == SensorKind.LOW_COST.value
        self.anchor.learn(batch.select(~low))
        if not low.any():
            return
        prm = self.params
        t_s = float(batch.time_s.max())
        rows = np.flatnonzero(low & np.isin(batch.pollutant, self.space.pollutants))
        # One update per (sensor, pollutant, edge) key: the mean of its raw values.
        frame = pd.DataFrame(
            {
                "sensor": batch.sensor_id[rows],
                "pollutant": batch.pollutant[rows],
                "edge": batch.edge_id[rows],
                "x": batch.value_ugm3[rows],
            }
        )
        means = frame.groupby(["sensor", "pollutant", "edge"], sort=True)["x"].mean()
        for p in self.space.pollutants:
            of_p = means[means.index.get_level_values("pollutant") == p]
            if not len(of_p):
                continue
            sensors = of_p.index.get_level_values("sensor").tolist()
            edges = of_p.index.get_level_values("edge").to_numpy(dtype=np.int64)
            y, r = self._anchor_data(p, t_s, edges)
            typical = self.typical_ugm3[p]
            step = np.array(
                [(prm.offset_step_rel_per_day * typical) ** 2, prm.gain_step_per_day**2]
            )
            cov = np.diag([(prm.offset_sd_rel * typical) ** 2, prm.gain_sd**2])
            # A sensor seen on two edges updates its one filter twice, in turn.
            slot: dict[str, int] = {}
            filters: list[AffineKalman] = []
            for sensor in sensors:
                if sensor not in slot:
                    kf = self.filters.get((sensor, p))
                    if kf is None:
                        kf = AffineKalman(np.array([0.0, 1.0]), cov, t_s)
                        self.filters[(sensor, p)] = kf
                    slot[sensor] = len(filters)
                    filters.append(kf)
            which = np.array([slot[sensor] for sensor in sensors], dtype=np.int64)
            theta = np.array([kf.theta for kf in filters])
            P = np.array([kf.P for kf in filters])
            clock = np.array([[kf.time_s, kf.learned_s] for kf in filters])
            count = np.array([kf.n_learned for kf in filters], dtype=np.int64)
            _learn_many(
                which,
                of_p.to_numpy(dtype=np.float64),
                y,
                r,
                t_s,
                step / DAY_S,
                prm.correlation_s,
                prm.huber_k,
                theta,
                P,
                clock,
                count,
            )
            for k, kf in enumerate(filters):  # copies: a view would keep the whole stack
                kf.theta, kf.P = theta[k].copy(), P[k].copy()
                kf.time_s, kf.learned_s = float(clock[k, 0]), float(clock[k, 1])
                kf.n_learned = int(count[k])

    def _anchor_data(
        self, pollutant: str, t_s: float, edges: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """What the unbiased readings alone say of the concentration at ``edges``: mean
        and variance in µg/m³ (variance ``inf`` where they say nothing).

        The anchor's street residual ``z`` (kriged mean ``m_z``, variance ``v_z``) has the
        prior ``N(0, σ_z²)``. That prior is the same for every batch, so learning from
        the posterior again and again would count it again and again and pull the sensor
        to the prior map; only the data's part of the posterior is used, its likelihood
        ``v_d = 1 / (1/v_z - 1/σ_z²)``, ``m_d = v_d m_z / v_z``. None of it is used where
        the readings are no better than the prior (``v_d > σ_z²``)."""
        level, level_var, m_z, v_z = self.anchor.log_ratio_parts(pollutant, t_s, edges)
        prior_var = self.anchor.covariance[pollutant].residual_sd ** 2
        # v_d <= σ_z²  ⇔  v_z <= σ_z² / 2
        informative = v_z <= 0.5 * prior_var
        v_d = np.where(
            informative, v_z * prior_var / (prior_var - np.minimum(v_z, 0.5 * prior_var)), 0.0
        )
        m_d = np.where(
            informative, m_z * prior_var / (prior_var - np.minimum(v_z, 0.5 * prior_var)), 0.0
        )
        log_mean = level + m_d
        log_var = level_var + v_d
        y = self.space.prior_ugm3[pollutant][edges] * np.exp(log_mean + 0.5 * log_var)
        r = np.where(informative, y**2 * np.expm1(log_var), np.inf)
        return y, r

    def calibrate(self, batch: ObservationBatch) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per row: calibrated value (µg/m³), its lasting error sd (log units) and
        the number of updates behind it; rows that are not low-cost or have no filter
        keep their value with sd NaN and count 0. The count is that of informative
        updates (batches with unbiased readings that said something of the sensor's air)."""
        values = batch.value_ugm3.copy()
        sd = np.full(len(batch), np.nan)
        count = np.zeros(len(batch))
        low = np.flatnonzero(batch.sensor_kind == SensorKind.LOW_COST.value)
        if not len(low) or not self.filters:
            return values, sd, count
        codes, key_list = pair_codes(batch.sensor_id[low], batch.pollutant[low])
        filters = [self.filters.get(key) for key in key_list]
        known = np.array([kf is not None for kf in filters], dtype=bool)
        if not known.any():
            return values, sd, count
        theta = np.array([kf.theta if kf is not None else (0.0, 1.0) for kf in filters])
        P = np.array([kf.P if kf is not None else np.zeros((2, 2)) for kf in filters])
        n = np.array([kf.n_learned if kf is not None else 0 for kf in filters], dtype=float)
        floors = np.array([0.1 * self.typical_ugm3.get(p, 0.0) for _, p in key_list])
        rows, k = low[known[codes]], codes[known[codes]]
        x = values[rows]
        # a + b x and its variance h P h, h = (1, x), as AffineKalman.predict_one
        value = theta[k, 0] + x * theta[k, 1]
        var = (P[k, 0, 0] + x * P[k, 1, 0]) + x * (P[k, 0, 1] + x * P[k, 1, 1])
        values[rows] = np.maximum(value, 0.0)
        sd[rows] = np.minimum(
            np.sqrt(np.maximum(var, 0.0)) / np.maximum(value, floors[k]),
            self.params.max_bias_sd,
        )
        count[rows] = n[k]
        return values, sd, count


def pair_codes(
    first: npt.ArrayLike, second: npt.ArrayLike
) -> tuple[IntArray, list[tuple[str, str]]]:
    """Per row, the index of its ``(first, second)`` pair in the list of distinct pairs (in
    order of first appearance): a (sensor, pollutant) key per row without a tuple per row."""
    a_codes, a_names = pd.factorize(np.asarray(first), sort=False)
    b_codes, b_names = pd.factorize(np.asarray(second), sort=False)
    codes, pairs = pd.factorize(a_codes.astype(np.int64) * len(b_names) + b_codes, sort=False)
    a_list, b_list = a_names.tolist(), b_names.tolist()
    n_b = len(b_names)
    keys = [(str(a_list[c // n_b]), str(b_list[c % n_b])) for c in pairs.tolist()]
    return codes.astype(np.int64), keys


@njit(cache=True)
def _learn_many(
    which: IntArray,
    x: FloatArray,
    y: FloatArray,
    r: FloatArray,
    t_s: float,
    step_var_per_s: FloatArray,
    correlation_s: float,
    huber_k: float,
    theta: FloatArray,
    P: FloatArray,
    clock: FloatArray,
    count: npt.NDArray[np.int64],
) -> None:
    """:meth:`AffineKalman.advance` to ``t_s``, then (where ``r`` is finite)
    :meth:`AffineKalman.learn_one` with the correlation inflation of
    :meth:`NetworkCalibration.learn`, for each key ``k`` on the stacked states ``theta (k,
    2)``, ``P (k, 2, 2)``, ``clock (k, 2)`` = (time, time of the last update), ``count``;
    row ``i`` of ``x``, ``y``, ``r`` updates key ``which[i]``, rows in order."""
    for i in range(len(x)):
        k = which[i]
        dt_s = t_s - clock[k, 1]
        if t_s > clock[k, 0]:
            elapsed = t_s - clock[k, 0]
            P[k, 0, 0] += step_var_per_s[0] * elapsed
            P[k, 1, 1] += step_var_per_s[1] * elapsed
            clock[k, 0] = t_s
        if not math.isfinite(r[i]):
            continue
        inflate = max(1.0, correlation_s / max(dt_s, 1.0))
        xk = x[i]
        ph0 = P[k, 0, 0] + P[k, 0, 1] * xk
        ph1 = P[k, 1, 0] + P[k, 1, 1] * xk
        innovation = y[i] - (theta[k, 0] + xk * theta[k, 1])
        s = ph0 + xk * ph1
        z = abs(innovation) / math.sqrt(s + r[i])
        weight = 1.0 if z <= huber_k else huber_k / z
        denom = s + r[i] * inflate / weight
        g0, g1 = ph0 / denom, ph1 / denom
        theta[k, 0] += g0 * innovation
        theta[k, 1] += g1 * innovation
        p00 = P[k, 0, 0] - g0 * ph0
        p01 = P[k, 0, 1] - g0 * ph1
        p10 = P[k, 1, 0] - g1 * ph0
        p11 = P[k, 1, 1] - g1 * ph1
        P[k, 0, 0] = p00
        P[k, 1, 1] = p11
        P[k, 0, 1] = P[k, 1, 0] = 0.5 * (p01 + p10)
        count[k] += 1
        clock[k, 1] = clock[k, 0]
