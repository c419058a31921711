"""The ground truth of the twin: a concentration on every edge at every tick.

For pollutant ``p``, edge ``e`` and tick time ``t``::

    truth[p, e, t] = prior[p, e] × profile_p(t) × weather_p(t) × local_p(e, t) × incident_p(e, t)

- ``prior``: the network's annual-mean street concentration (``edge_prior_ugm3``).
- ``profile_p``: diurnal × weekly shape (:mod:`airpath.sensors.profiles`).
- ``weather_p = exp(x_p - σ_p²/2)``: a city-wide log-normal factor; ``x`` is a
  3-variate Ornstein–Uhlenbeck process sampled at the tick, ``x_k = φ x_{k-1} +
  sqrt(1-φ²) L z_k`` with ``φ = exp(-Δt/τ)`` and ``L Lᵀ`` the covariance. τ = 8 h: the
  persistence of boundary-layer and synoptic conditions (autocorrelation of daily-mean
  anomalies of urban NO2/PM is high from one day to the next; hours-scale τ keeps a day
  varied). σ and the inter-pollutant correlations are modelling choices (PM10/PM2.5
  share most sources, NO2 less so).
- ``local_p = exp(s_p f_p(e, t) - s_p²/2)``: a smooth, slowly moving random field over
  the city: random Fourier features of a squared-exponential kernel (Rahimi & Recht
  2007) with length scale 1.5 km (a neighbourhood; shrunk to a fifth of the extent,
  at least 300 m, on small extracts so they still vary), whose phases drift with
  periods of 6–24 h.
- ``incident_p``: multiplicative uplift of active incidents (:mod:`.incidents`).

Every random number is drawn up front from the seed, so :meth:`TruthModel.at` is a pure
function of the tick: truth for any time can be recomputed without replaying the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from airpath.network.store import Network
from airpath.sensors.incidents import Incident, edge_midpoints_m
from airpath.sensors.profiles import temporal_factor

FloatArray = npt.NDArray[np.float64]

WEATHER_TAU_H = 8.0
WEATHER_SIGMA = {"no2": 0.30, "pm10": 0.35, "pm25": 0.40}  # of log concentration
WEATHER_CORR = {("no2", "pm10"): 0.5, ("no2", "pm25"): 0.5, ("pm10", "pm25"): 0.85}
LOCAL_SIGMA = {"no2": 0.25, "pm10": 0.15, "pm25": 0.12}  # of log concentration
LOCAL_CORR = 0.6  # between pollutants' local fields
LOCAL_LENGTH_SCALE_M = 1500.0
MIN_LENGTH_SCALE_M = 300.0
LOCAL_PERIOD_H = (6.0, 24.0)
N_FEATURES = 48
DEFAULT_SIGMA = 0.3


@dataclass(frozen=True)
class TruthModel:
    """Truth per edge on a regular tick grid; build with :meth:`create`."""

    pollutants: tuple[str, ...]
    start: dt.datetime
    tick_s: float
    n_ticks: int
    prior_ugm3: FloatArray  # (P, E)
    temporal: FloatArray  # (P, n_ticks) profile × weather, dimensionless
    weather: FloatArray  # (P, n_ticks), dimensionless, for the manifest and tests
    cos_features: FloatArray  # (E, K)
    sin_features: FloatArray  # (E, K)
    coef: FloatArray  # (P, K) feature weights, already scaled by sqrt(2/K)
    omega_rad_s: FloatArray  # (K,)
    local_sigma: FloatArray  # (P,)
    length_scale_m: float
    incidents: tuple[Incident, ...]

    @classmethod
    def create(
        cls,
        network: Network,
        rng: np.random.Generator,
        start: dt.datetime,
        tick_s: float,
        n_ticks: int,
        tz: dt.tzinfo,
        incidents: Sequence[Incident] = (),
    ) -> TruthModel:
        pols = tuple(network.pollutants)
        prior = np.asarray(network.edge_prior_ugm3, dtype=np.float64)
        times = [start + dt.timedelta(seconds=k * tick_s) for k in range(n_ticks)]
        profile = np.stack([temporal_factor(p, times, tz) for p in pols])
        weather = _weather(pols, rng, tick_s, n_ticks)

        x_m, y_m = edge_midpoints_m(network)
        extent_m = float(np.hypot(np.ptp(x_m), np.ptp(y_m)))
        scale_m = float(np.clip(extent_m / 5.0, MIN_LENGTH_SCALE_M, LOCAL_LENGTH_SCALE_M))
        w = rng.normal(0.0, 1.0 / scale_m, size=(N_FEATURES, 2))
        phase = rng.uniform(0.0, 2 * np.pi, size=N_FEATURES)
        period_s = rng.uniform(*LOCAL_PERIOD_H, size=N_FEATURES) * 3600.0
        omega = 2 * np.pi / period_s * rng.choice([-1.0, 1.0], size=N_FEATURES)
        # Centre the coordinates so that float64 phases keep their precision.
        theta = np.outer(x_m - x_m.mean(), w[:, 0]) + np.outer(y_m - y_m.mean(), w[:, 1]) + phase
        corr = np.full((len(pols), len(pols)), LOCAL_CORR)
        np.fill_diagonal(corr, 1.0)
        coef = (np.linalg.cholesky(corr) @ rng.standard_normal((len(pols), N_FEATURES))) * np.sqrt(
            2.0 / N_FEATURES
        )
        return cls(
            pollutants=pols,
            start=start,
            tick_s=tick_s,
            n_ticks=n_ticks,
            prior_ugm3=prior,
            temporal=profile * weather,
            weather=weather,
            cos_features=np.cos(theta),
            sin_features=np.sin(theta),
            coef=coef,
            omega_rad_s=omega,
            local_sigma=np.array([LOCAL_SIGMA.get(p, DEFAULT_SIGMA) for p in pols]),
            length_scale_m=scale_m,
            incidents=tuple(incidents),
        )

    def tick_of(self, t: dt.datetime) -> int:
        """The tick holding time ``t`` (truth is constant within a tick)."""
        k = int((t - self.start).total_seconds() // self.tick_s)
        return min(max(k, 0), self.n_ticks - 1)

    def at(self, k: int) -> FloatArray:
        """Truth in µg/m³ at tick ``k``, shape ``(len(pollutants), n_edges)``."""
        t_s = k * self.tick_s
        c = self.coef * np.cos(self.omega_rad_s * t_s)
        s = self.coef * np.sin(self.omega_rad_s * t_s)
        # cos(θ + ωt) = cos θ cos ωt - sin θ sin ωt: two small mat-vecs per tick.
        field = c @ self.cos_features.T - s @ self.sin_features.T
        sig = self.local_sigma[:, None]
        out = self.prior_ugm3 * self.temporal[:, k, None] * np.exp(sig * field - 0.5 * sig**2)
        t = self.start + dt.timedelta(seconds=t_s)
        for inc in self.incidents:
            if inc.active(t):
                idx = np.asarray(inc.edges, dtype=np.int64)
                for i, p in enumerate(self.pollutants):
                    out[i, idx] *= inc.factor_for(p)
        return out


def _weather(
    pols: tuple[str, ...], rng: np.random.Generator, tick_s: float, n_ticks: int
) -> FloatArray:
    sigma = np.array([WEATHER_SIGMA.get(p, DEFAULT_SIGMA) for p in pols])
    corr = np.eye(len(pols))
    for i, a in enumerate(pols):
        for j, b in enumerate(pols):
            if i != j:
                corr[i, j] = WEATHER_CORR.get((a, b), WEATHER_CORR.get((b, a), 0.3))
    chol = np.linalg.cholesky(corr) * sigma[:, None]
    phi = float(np.exp(-tick_s / (WEATHER_TAU_H * 3600.0)))
    z = rng.standard_normal((len(pols), n_ticks))
    x = np.empty((len(pols), n_ticks))
    x[:, 0] = chol @ z[:, 0]  # start in the stationary distribution
    innov = np.sqrt(1.0 - phi**2) * (chol @ z)
    for k in range(1, n_ticks):
        x[:, k] = phi * x[:, k - 1] + innov[:, k]
    return np.exp(x - 0.5 * sigma[:, None] ** 2)
