"""The inhaled-dose model against the literature figures it is built on."""

from __future__ import annotations

import numpy as np
import pytest

from airpath.exposure import model


def test_reference_ventilation_is_cole_2018():
    speed, ve = model.riding(np.array([model.REFERENCE_SPEED_KPH]), np.array([0.0]))
    assert speed[0] == pytest.approx(16.0, abs=0.01)
    assert ve[0] == pytest.approx(46.0, abs=0.01)


def test_dose_minimising_speed_is_in_bigazzi_range():
    """Bigazzi 2017: on flat ground inhaled dose per km is least at 12-20 km/h."""
    speeds = np.linspace(5, 35, 601)
    ve = model.ventilation_lpm(model.power_w(speeds, 0.0))
    per_km = ve / speeds  # L/min over km/h ∝ litres per km
    best = speeds[np.argmin(per_km)]
    assert 12.0 <= best <= 20.0


def test_climbs_are_slower_and_breathe_more_descents_faster_capped():
    flat = np.full(5, 16.0)
    grade = np.array([-0.10, -0.03, 0.0, 0.03, 0.08])
    speed, ve = model.riding(flat, grade)
    assert np.all(np.diff(speed) < 0)  # steeper: slower
    assert speed[0] == pytest.approx(model.MAX_DOWNHILL_SPEED_KPH)
    assert ve[3] > ve[2] > ve[1]
    assert ve[4] >= ve[3]


def test_dose_units():
    inhaled = model.inhaled_m3(np.array([46.0]), np.array([60.0]))  # one minute
    assert inhaled[0] == pytest.approx(0.046)
    assert model.dose_ug(np.array([40.0]), inhaled)[0] == pytest.approx(1.84)
