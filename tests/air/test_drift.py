"""Drift detection on residuals: bounded delay on a step, silence when stationary."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from airpath.air.drift import DriftMonitor, adwin, page_hinkley
from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import ResidualKriging
from airpath.air.observations import ObservationBatch

T0 = dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize("make", [adwin, page_hinkley])
def test_stationary_residuals_raise_nothing(make: object) -> None:
    rng = np.random.default_rng(42)
    monitor = DriftMonitor(make)  # type: ignore[arg-type]
    for k in range(200):
        assert monitor.update(T0 + 300 * k, "no2", rng.normal(0.0, 0.2, 40)) is None
    assert monitor.reports == []


@pytest.mark.parametrize("make", [adwin, page_hinkley])
def test_step_change_is_detected_within_three_batches(make: object) -> None:
    rng = np.random.default_rng(43)
    monitor = DriftMonitor(make)  # type: ignore[arg-type]
    for k in range(100):
        monitor.update(T0 + 300 * k, "no2", rng.normal(0.0, 0.2, 40))
    assert monitor.reports == []
    fired_at = None
    for k in range(100, 110):
        if monitor.update(T0 + 300 * k, "no2", rng.normal(0.4, 0.2, 40)):
            fired_at = k
            break
    assert fired_at is not None
    assert fired_at - 100 < 3
    (report,) = monitor.reports
    assert report.pollutant == "no2"
    assert report.time_s == T0 + 300 * fired_at


def test_estimator_records_drift_and_refits() -> None:
    rng = np.random.default_rng(8)
    n = 400
    space = EdgeSpace(rng.uniform(0, 3000, (n, 2)), {"no2": np.full(n, 20.0)})
    model = ResidualKriging(space)
    edges = rng.choice(n, 60, replace=False)
    for k in range(40):
        factor = 1.0 if k < 30 else 2.5  # the regional level jumps at batch 30
        values = 20.0 * factor * rng.lognormal(0.0, 0.1, 60)
        model.learn(ObservationBatch.create(edges, T0 + 300 * k, "no2", values, "r", "reference"))
    assert [r.pollutant for r in model.drift.reports] == ["no2"]
    assert model.drift.reports[0].time_s >= T0 + 300 * 30
    when = dt.datetime.fromtimestamp(T0 + 300 * 39, dt.UTC)
    mean = model.predict(when, [0]).pollutants["no2"].mean_ugm3[0]
    # Re-fitted on post-change data only: the field sits at the new level, not a blend.
    assert np.median(mean) == pytest.approx(50.0, rel=0.1)
