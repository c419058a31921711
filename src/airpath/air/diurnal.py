"""The city-wide level's daily shape, learnt from the history lake's hourly levels.

:func:`diurnal_profile` averages the hourly city-wide levels (log-ratio to the prior, see
:mod:`airpath.air.training`) by local hour and day type (Monday–Friday, weekend), shrinking
thinly observed bins toward the pooled hour-of-day mean; the result is callable with a UTC
time and feeds the level forecaster (:mod:`airpath.air.forecast`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from airpath.air.frames import require_columns
from airpath.air.observations import FloatArray, IntArray
from airpath.errors import InputError

HOUR_S = 3600.0


def day_type(local_day: IntArray) -> IntArray:
    """0 Monday–Friday, 1 Saturday–Sunday, for days since 1970-01-01 (a Thursday)."""
    return ((local_day + 3) % 7 >= 5).astype(np.int64)


@dataclass(frozen=True, eq=False)
class PollutantProfile:
    """Expected level (log units) of one pollutant; called with a UTC time (epoch s).

    ``level[d, h]`` is the level of local hour ``h`` on day type ``d``, placed at the hour's
    middle and linearly interpolated between middles (across midnight and day types too).

    >>> flat = PollutantProfile(np.zeros((2, 24)))
    >>> flat(1_700_000_000.0)
    0.0
    """

    level: FloatArray  # (2, 24)
    utc_offset_h: float = 0.0

    def __call__(self, time_s: float) -> float:
        x = (time_s + self.utc_offset_h * HOUR_S) / HOUR_S - 0.5
        a0 = math.floor(x)
        f = x - a0
        return (1.0 - f) * self._at(a0) + f * self._at(a0 + 1)

    def _at(self, local_hour: int) -> float:
        day, hour = divmod(local_hour, 24)
        return float(self.level[1 if (day + 3) % 7 >= 5 else 0, hour])


@dataclass(frozen=True, eq=False)
class DiurnalProfile:
    """Per pollutant, the city-wide level by local day type and hour; see :func:`diurnal_profile`.

    ``level`` and ``hours`` (hourly levels behind each bin) have shape ``(P, 2, 24)``.
    Local time is UTC + ``utc_offset_h`` (fixed: daylight saving is not modelled).
    """

    pollutants: tuple[str, ...]
    level: FloatArray
    hours: IntArray
    utc_offset_h: float = 0.0

    def __post_init__(self) -> None:
        shape = (len(self.pollutants), 2, 24)
        if self.level.shape != shape or self.hours.shape != shape:
            raise InputError(f"diurnal profile arrays must have shape {shape}")

    def __call__(self, pollutant: str, time_s: float) -> float:
        return self.for_pollutant(pollutant)(time_s)

    def for_pollutant(self, pollutant: str) -> PollutantProfile:
        if pollutant not in self.pollutants:
            raise InputError(f"no diurnal profile for {pollutant!r} (have {self.pollutants})")
        return PollutantProfile(self.level[self.pollutants.index(pollutant)], self.utc_offset_h)


def diurnal_profile(levels: pd.DataFrame, *, utc_offset_h: float = 0.0) -> DiurnalProfile:
    """Mean hourly level by (weekday/weekend, local hour), shrunk where data are few.

    ``levels`` has columns ``pollutant``, ``hour_s`` (start of the UTC hour, epoch s) and
    ``level``. Two-level empirical-Bayes shrinkage (Efron & Morris 1975, *JASA* 70:311):
    hour-of-day means toward the overall mean, then day-type × hour means toward their
    hour-of-day value, each by ``τ²/(τ² + s²/n)`` with ``s²`` the pooled within-bin
    variance of hourly levels and ``τ²`` the method-of-moments variance between bins. An
    empty bin takes its target; with one hour per bin ``s²`` is unknown and the total
    variance is used, so a single day (diurnal shape indistinguishable from weather)
    gives a nearly flat profile.
    """
    require_columns(levels, ("pollutant", "hour_s", "level"), "hourly levels")
    pollutants = tuple(sorted(str(p) for p in levels["pollutant"].unique()))
    out = np.zeros((len(pollutants), 2, 24))
    hours = np.zeros((len(pollutants), 2, 24), dtype=np.int64)
    for k, p in enumerate(pollutants):
        rows = levels[levels["pollutant"] == p]
        mid_s = rows["hour_s"].to_numpy(np.float64) + HOUR_S / 2 + utc_offset_h * HOUR_S
        local_hour = np.floor(mid_s / HOUR_S).astype(np.int64)
        hod = local_hour % 24
        kind = day_type(local_hour // 24)
        out[k], hours[k] = _profile_one(rows["level"].to_numpy(np.float64), kind, hod)
    return DiurnalProfile(pollutants, out, hours, float(utc_offset_h))


def _profile_one(y: FloatArray, kind: IntArray, hod: IntArray) -> tuple[FloatArray, IntArray]:
    overall = float(y.mean())
    n1, mean1 = _bin_means(y, hod, 24)
    within1 = _pooled_within(y, hod, mean1, n1)
    if not math.isfinite(within1):
        within1 = float(y.var())
    by_hour = _shrink(mean1, n1, np.full(24, overall), within1)
    cell = kind * 24 + hod
    n2, mean2 = _bin_means(y, cell, 48)
    within2 = _pooled_within(y, cell, mean2, n2)
    both = _shrink(mean2, n2, np.tile(by_hour, 2), within2 if math.isfinite(within2) else within1)
    return both.reshape(2, 24), n2.reshape(2, 24)


def _bin_means(y: FloatArray, idx: IntArray, size: int) -> tuple[IntArray, FloatArray]:
    n = np.bincount(idx, minlength=size)
    s = np.bincount(idx, weights=y, minlength=size)
    return n, np.divide(s, n, out=np.zeros(size), where=n > 0)


def _pooled_within(y: FloatArray, idx: IntArray, means: FloatArray, n: IntArray) -> float:
    dof = len(y) - int((n > 0).sum())
    return float(((y - means[idx]) ** 2).sum() / dof) if dof > 0 else math.nan


def _shrink(means: FloatArray, n: IntArray, target: FloatArray, within: float) -> FloatArray:
    out = target.astype(np.float64).copy()
    seen = n > 0
    if not seen.any():
        return out
    noise = within / n[seen]
    dev = means[seen] - target[seen]
    tau2 = float(np.mean(dev**2 - noise))
    if tau2 > 0:
        out[seen] = target[seen] + tau2 / (tau2 + noise) * dev
    return out
