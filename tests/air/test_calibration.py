"""Low-cost sensor calibration: RLS against its batch oracle, and a drifting sensor."""

from __future__ import annotations

import datetime as dt

import numpy as np

from airpath.air.calibration import CalibratedEstimator, RecursiveLeastSquares, SensorCalibrator
from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import ResidualKriging
from airpath.air.observations import ObservationBatch

T0 = dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC).timestamp()


def test_rls_equals_weighted_least_squares_at_every_step() -> None:
    rng = np.random.default_rng(3)
    lam, delta, theta0 = 0.95, 0.5, np.array([0.0, 1.0])
    rls = RecursiveLeastSquares(2, forgetting=lam, delta=delta, theta0=theta0)
    X = np.column_stack([np.ones(60), rng.uniform(5, 60, 60)])
    y = 3.0 + 0.8 * X[:, 1] + rng.normal(0, 2, 60)
    for n in range(1, 61):
        rls.learn_one(X[n - 1], float(y[n - 1]))
        w = lam ** (n - 1 - np.arange(n))
        A = (X[:n].T * w) @ X[:n] + lam**n * delta * np.eye(2)
        b = (X[:n].T * w) @ y[:n] + lam**n * delta * theta0
        np.testing.assert_allclose(rls.theta, np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)


def _drifting_day(seed: int) -> tuple[list[ObservationBatch], np.ndarray, np.ndarray]:
    """A reference station on edge 0 and a low-cost sensor on edge 1 (20 m away) whose
    gain drifts from 1.0 to 1.6 over the day, every 5 min for 24 h."""
    rng = np.random.default_rng(seed)
    batches, truth, raw = [], [], []
    for k in range(288):
        t = T0 + 300.0 * k
        c = 30.0 + 12.0 * np.sin(2 * np.pi * k / 288) + rng.normal(0, 3)
        gain = 1.0 + 0.6 * k / 288
        x = gain * c + 8.0 + rng.normal(0, 1.0)
        truth.append(c)
        raw.append(x)
        batches.append(
            ObservationBatch.create(
                [0, 1],
                [t, t],
                "no2",
                [c + rng.normal(0, 0.5), x],
                ["ref", "lc"],
                ["reference", "low_cost"],
            )
        )
    return batches, np.array(truth), np.array(raw)


def _calibrated(cal: SensorCalibrator, batches: list[ObservationBatch]) -> np.ndarray:
    out = np.full(len(batches), np.nan)
    for k, b in enumerate(batches):
        # Transform before learning: an honest, prequential error.
        lc = cal.transform(b.select(b.sensor_kind == "low_cost"))
        if len(lc):
            out[k] = lc.value_ugm3[0]
        cal.learn(b)
    return out


def test_drifting_sensor_calibrated_error_shrinks() -> None:
    space = EdgeSpace(np.array([[0.0, 0.0], [20.0, 0.0], [900.0, 0.0]]), {"no2": np.full(3, 25.0)})
    batches, truth, raw = _drifting_day(1)
    cal = SensorCalibrator(space)
    calibrated = _calibrated(cal, batches)
    assert np.isnan(calibrated[: cal.min_pairs]).all()  # withheld until calibrated
    err, raw_err = np.abs(calibrated - truth), np.abs(raw - truth)
    early, late = slice(cal.min_pairs, 60), slice(-72, None)
    # Relative to the sensor's own (growing) error, calibration gets better and better.
    assert (
        np.nanmean(err[late]) / raw_err[late].mean()
        < np.nanmean(err[early]) / raw_err[early].mean()
    )
    assert np.nanmean(err[late]) < 0.15 * raw_err[late].mean()
    # Forgetting is what tracks the drift: without it the late error is larger.
    frozen = _calibrated(SensorCalibrator(space, forgetting=1.0), batches)
    assert np.nanmean(err[late]) < 0.7 * np.nanmean(np.abs(frozen - truth)[late])


def test_drifting_sensor_does_not_poison_the_field() -> None:
    space = EdgeSpace(np.array([[0.0, 0.0], [20.0, 0.0], [150.0, 0.0]]), {"no2": np.full(3, 25.0)})
    batches, truth, _ = _drifting_day(2)
    raw_model = ResidualKriging(space)
    calibrated_model = CalibratedEstimator(ResidualKriging(space), SensorCalibrator(space))
    for b in batches:
        # Only the low-cost sensor reaches the estimator after the first hours.
        feed = b if b.time_s[0] < T0 + 4 * 3600 else b.select(b.sensor_kind == "low_cost")
        raw_model.learn(feed)
        calibrated_model.learn(feed)
    when = dt.datetime.fromtimestamp(batches[-1].time_s[0], dt.UTC)
    est_raw = raw_model.predict(when, [0]).pollutants["no2"].mean_ugm3[0, 2]
    est_cal = calibrated_model.predict(when, [0]).pollutants["no2"].mean_ugm3[0, 2]
    assert abs(est_cal - truth[-1]) < 0.5 * abs(est_raw - truth[-1])


def _reference_learn(cal: SensorCalibrator, batch: ObservationBatch) -> None:
    """The calibrator's learning written as the plain per-reading loop it stands for."""
    ref = cal._remember(batch)
    low = np.flatnonzero(batch.sensor_kind == "low_cost")
    for i in low[np.argsort(batch.time_s[low], kind="stable")]:
        d = np.hypot(*(cal.space.xy_m[ref.edge_id] - cal.space.xy_m[batch.edge_id[i]]).T)
        ok = (
            (d <= cal.radius_m)
            & (ref.pollutant == batch.pollutant[i])
            & (np.abs(ref.time_s - batch.time_s[i]) <= cal.window_s)
        )
        if not ok.any():
            continue
        key = (str(batch.sensor_id[i]), str(batch.pollutant[i]))
        model = cal.models.setdefault(
            key, RecursiveLeastSquares(2, forgetting=cal.forgetting, delta=cal.delta,
                                       theta0=(0.0, 1.0))
        )  # fmt: skip
        model.learn_one(np.array([1.0, batch.value_ugm3[i]]), float(ref.value_ugm3[ok].mean()))


def test_vectorised_learning_equals_the_per_reading_loop() -> None:
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 400, (30, 2))
    space = EdgeSpace(xy, {"no2": np.full(30, 20.0), "pm10": np.full(30, 15.0)})
    fast = SensorCalibrator(space, radius_m=120.0, use_network=False)
    slow = SensorCalibrator(space, radius_m=120.0, use_network=False)
    for k in range(12):
        n = 80
        batch = ObservationBatch.create(
            rng.integers(0, 30, n),
            T0 + 300.0 * k + rng.uniform(0, 300, n),
            rng.choice(["no2", "pm10"], n),
            rng.uniform(5, 60, n),
            [f"s{j}" for j in rng.integers(0, 12, n)],
            rng.choice(["reference", "low_cost", "mobile"], n, p=[0.3, 0.6, 0.1]),
        )
        fast.learn(batch)
        _reference_learn(slow, batch)
        assert fast.models.keys() == slow.models.keys()
        for key, model in slow.models.items():
            np.testing.assert_allclose(fast.models[key].theta, model.theta, rtol=1e-9)
            np.testing.assert_allclose(fast.models[key].P, model.P, rtol=1e-9, atol=1e-12)
            assert fast.models[key].n_learned == model.n_learned
        assert k < 3 or len(slow.models) >= 5
        np.testing.assert_allclose(fast.transform(batch).value_ugm3,
                                   slow.transform(batch).value_ugm3, rtol=1e-12)  # fmt: skip
