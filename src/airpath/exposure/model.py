"""Inhaled dose of a cyclist: concentration × minute ventilation × time.

Formula, per edge ``e`` of a route::

    dose_ug[e] = concentration_ugm3[e] × inhaled_m3[e]
    inhaled_m3[e] = ventilation_lpm[e] / 1000 × duration_s[e] / 60

and the dose of a route is the sum over its edges. Units: µg, µg/m³, L/min, m³, s.

Minute ventilation follows the rider's mechanical power, as in the ventilation–power
relations measured on urban cyclists (Bigazzi & Figliozzi 2014, "Review of urban
bicyclists' intake and uptake of traffic-related air pollution", Transport Reviews 34;
Bigazzi 2017, "Determination of active travel speed for minimum air pollution inhalation",
Int. J. Sustainable Transportation 11):

    ventilation_lpm = VENTILATION_INTERCEPT_LPM + VENTILATION_SLOPE_LPM_PER_W × power_w

with ``power_w`` from the standard cycling power equation (rolling resistance, gravity on
the grade, aerodynamic drag; Martin et al. 1998, J. Applied Biomechanics 14)::

    power_w = v × (m g (c_rr cos θ + sin θ) + ½ ρ CdA v²)

The slope is set so that cruising on the flat at ``REFERENCE_SPEED_KPH`` gives
``REFERENCE_VENTILATION_LPM`` = 46 L/min, the minute ventilation of urban cycling
reported by Cole et al. 2018. With these constants the flat-ground speed that minimises
inhaled dose per kilometre is about 12–13 km/h, inside the 12–20 km/h range Bigazzi 2017
reports; ``tests/exposure`` checks that.

Speed on a grade: the rider keeps the flat-ground power on the level, pushes harder up a
climb (``CLIMB_EFFORT`` more power per unit of grade, capped at ``MAX_POWER_W`` but never
below the flat power) and eases off downhill (power falls to zero on steep descents), and
the speed solves the power equation, capped at the profile's maximum downhill speed.
Walking a bike: a fixed speed and the US EPA Exposure Factors Handbook (2011, chapter 6)
moderate-intensity ventilation of adults, ``WALK_VENTILATION_LPM``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MASS_KG = 85.0  # rider and bicycle
GRAVITY_MS2 = 9.81
ROLLING_RESISTANCE = 0.006  # asphalt, city tyres
AIR_DENSITY_KGM3 = 1.2
DRAG_AREA_M2 = 0.45  # upright city bike position

REFERENCE_SPEED_KPH = 16.0
REFERENCE_VENTILATION_LPM = 46.0  # Cole et al. 2018, urban cycling
VENTILATION_INTERCEPT_LPM = 15.0  # intercept of the linear VE-power relation, not rest VE
WALK_VENTILATION_LPM = 26.0  # EPA Exposure Factors Handbook 2011, table 6-2, moderate
CLIMB_EFFORT = 25.0  # extra power fraction per unit grade (6 % grade: 2.5 × flat power)
MAX_POWER_W = 250.0
MIN_RIDE_SPEED_KPH = 4.0
MAX_DOWNHILL_SPEED_KPH = 35.0


def power_w(speed_kph: FloatArray | float, grade: FloatArray | float) -> FloatArray:
    """Mechanical power (W) to hold ``speed_kph`` on ``grade`` (rise/run), ≥ 0."""
    return np.maximum(_net_power_w(speed_kph, grade), 0.0)


def _net_power_w(speed_kph: FloatArray | float, grade: FloatArray | float) -> FloatArray:
    # Negative where gravity alone would hold the speed (the rider brakes).
    v = np.asarray(speed_kph, dtype=np.float64) / 3.6
    theta = np.arctan(np.asarray(grade, dtype=np.float64))
    resist = MASS_KG * GRAVITY_MS2 * (ROLLING_RESISTANCE * np.cos(theta) + np.sin(theta))
    return np.asarray(v * (resist + 0.5 * AIR_DENSITY_KGM3 * DRAG_AREA_M2 * v * v))


VENTILATION_SLOPE_LPM_PER_W = float(
    (REFERENCE_VENTILATION_LPM - VENTILATION_INTERCEPT_LPM) / power_w(REFERENCE_SPEED_KPH, 0.0)
)


def ventilation_lpm(rider_power_w: FloatArray | float) -> FloatArray:
    """Minute ventilation (L/min) of a cyclist producing ``rider_power_w``."""
    p = np.maximum(np.asarray(rider_power_w, dtype=np.float64), 0.0)
    return VENTILATION_INTERCEPT_LPM + VENTILATION_SLOPE_LPM_PER_W * p


def riding(
    flat_speed_kph: FloatArray, grade: FloatArray, max_downhill_kph: float = MAX_DOWNHILL_SPEED_KPH
) -> tuple[FloatArray, FloatArray]:
    """Speed (km/h) and minute ventilation (L/min) riding at a given flat speed onto grades.

    >>> speed, ve = riding(np.array([16.0, 16.0, 16.0]), np.array([0.0, 0.06, -0.06]))
    >>> [round(float(s), 1) for s in speed], [round(float(x)) for x in ve]
    ([16.0, 7.4, 35.0], [46, 92, 15])
    """
    flat = np.asarray(flat_speed_kph, dtype=np.float64)
    g = np.asarray(grade, dtype=np.float64)
    p_flat = power_w(flat, 0.0)
    p_rider = np.where(
        g >= 0,
        np.maximum(np.minimum(p_flat * (1.0 + CLIMB_EFFORT * g), MAX_POWER_W), p_flat),
        p_flat * np.maximum(1.0 + CLIMB_EFFORT * g, 0.0),
    )
    # Net power is below the rider's power (>= 0) up to one crossing: bisect for it.
    lo = np.zeros_like(flat)
    hi = np.full_like(flat, 120.0)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        below = _net_power_w(mid, g) < p_rider
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    speed = np.clip(0.5 * (lo + hi), MIN_RIDE_SPEED_KPH, np.maximum(max_downhill_kph, flat))
    return speed, ventilation_lpm(p_rider)


def inhaled_m3(ventilation: FloatArray, duration_s: FloatArray) -> FloatArray:
    """Volume of air (m³) breathed at ``ventilation`` L/min for ``duration_s`` seconds."""
    return np.asarray(ventilation) / 1000.0 * np.asarray(duration_s) / 60.0


def dose_ug(concentration_ugm3: FloatArray, inhaled: FloatArray) -> FloatArray:
    """Inhaled dose (µg) from concentration (µg/m³) and breathed volume (m³)."""
    return np.asarray(concentration_ugm3) * np.asarray(inhaled)
