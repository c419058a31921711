"""Diurnal and weekly shapes of urban concentrations, bundled as numbers.

A concentration at a street is modelled as a background part, flat over the day, plus a
traffic part that follows the road-traffic *emission* time profile::

    profile_p(t) = b_p + (1 - b_p) × hour_factor[h(t)] × weekday_factor[d(t)]

with ``h`` and ``d`` the local hour and weekday. Both factor tables average 1, so the
profile averages about 1 over a week and the network's annual-mean priors keep their
level. Dilution by the daytime mixing layer is not modelled (it would flatten the midday
NO2 further); the twin needs a plausible, testable shape, not a forecast.

Sources:

- ``HOUR_FACTOR`` and ``WEEKDAY_FACTOR``: the road-transport (SNAP sector 7) temporal
  emission profiles used across European chemistry-transport models, from Denier van der
  Gon et al. (2011), *Description of current temporal emission patterns and sensitivity
  of predicted AQ for temporal emission patterns*, EU FP7 MACC deliverable D-EMIS-1.3
  (TNO). Morning (07–08 h) and evening (16–17 h) peaks, a night trough, weekends ~20 %
  lower. The numbers below reproduce that published shape but were not re-checked value
  by value against the report; treat them as its shape, not a citation of its table.
- ``BACKGROUND_SHARE``: a modelling choice, not a fit. NO2 at street level is dominated
  by local traffic (about half of the level), PM much less so (regional and secondary
  aerosol); orders of magnitude as in source-apportionment studies of Barcelona such as
  Amato et al. (2009), *Atmospheric Environment* 43:2770–2780.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Local hour 0..23, weekday (Monday 0). Road transport, SNAP 7 (TNO/MACC, see above).
HOUR_FACTOR = np.array(
    [0.19, 0.09, 0.06, 0.05, 0.09, 0.22, 0.86, 1.84, 1.86, 1.41, 1.24, 1.20,
     1.32, 1.44, 1.45, 1.59, 2.03, 2.08, 1.51, 1.06, 0.74, 0.62, 0.61, 0.44],
)  # fmt: skip
WEEKDAY_FACTOR = np.array([1.02, 1.06, 1.08, 1.10, 1.14, 0.81, 0.79])

# Share of the annual-mean street concentration that does not follow traffic.
BACKGROUND_SHARE = {"no2": 0.45, "pm10": 0.75, "pm25": 0.80, "o3": 1.0}
DEFAULT_BACKGROUND_SHARE = 0.8


def temporal_factor(pollutant: str, times: list[dt.datetime], tz: dt.tzinfo) -> FloatArray:
    """Dimensionless diurnal × weekly factor at each time (local time in ``tz``).

    The hour factor is interpolated linearly between hour centres so that the profile
    has no steps on the hour.

    >>> import datetime as dt
    >>> rush = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)   # a Monday
    >>> night = dt.datetime(2026, 5, 4, 4, 0, tzinfo=dt.UTC)
    >>> f = temporal_factor("no2", [rush, night], dt.UTC)
    >>> bool(f[0] > 2 * f[1])
    True
    """
    b = BACKGROUND_SHARE.get(pollutant, DEFAULT_BACKGROUND_SHARE)
    out = np.empty(len(times), dtype=np.float64)
    for i, t in enumerate(times):
        local = t.astimezone(tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0 - 0.5
        h0 = int(np.floor(hour)) % 24
        w = hour - np.floor(hour)
        hourly = (1.0 - w) * HOUR_FACTOR[h0] + w * HOUR_FACTOR[(h0 + 1) % 24]
        out[i] = b + (1.0 - b) * hourly * WEEKDAY_FACTOR[local.weekday()]
    return out
