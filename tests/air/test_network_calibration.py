"""Network calibration of low-cost sensors: Kalman against its batch oracle, a biased
sensor among unbiased readings, an incident that must not become a bias, old pickles."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pytest

from airpath.air.calibration import (
    CalibratedEstimator,
    RecursiveLeastSquares,
    SensorCalibrator,
)
from airpath.air.estimate import EdgeSmoother, EdgeSpace
from airpath.air.kriging import KrigingParams, ResidualKriging
from airpath.air.network_calibration import (
    AffineKalman,
    NetworkCalibration,
    NetworkCalibrationParams,
)
from airpath.air.observations import ObservationBatch, ObservationError

T0 = dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC).timestamp()
BATCH_S = 300.0
GAIN, OFFSET = 1.25, 6.0  # the low-cost sensor's true error: raw = 1.25 c + 6
SENSOR_EDGE = 22
# A 9 × 5 grid of streets 150 m apart; a reference station at one corner, 850 m away.
XY = np.array([[150.0 * i, 150.0 * j] for i in range(9) for j in range(5)])
REF_EDGE = 0


def _truth(t_s: float) -> np.ndarray:
    """NO2 on every edge: a daily cycle (×/÷ 2) times a smooth, slowly moving pattern."""
    hours = (t_s - T0) / 3600.0
    level = 30.0 * np.exp(0.5 * np.sin(2 * np.pi * hours / 24.0))
    x, y = XY[:, 0], XY[:, 1]
    pattern = 0.2 * np.sin(x / 700.0 + hours / 10.0) * np.cos(y / 500.0)
    return level * np.exp(pattern)


def _batches(
    hours: float, seed: int, incident: tuple[float, float] | None = None
) -> list[tuple[ObservationBatch, np.ndarray]]:
    """5-min batches: the reference station, a bike reading 8 random edges (never the
    sensor's during the incident) and the low-cost sensor every minute; with the truth
    at the batch time. ``incident`` (start, end) in hours: ×2.5 at the sensor's edge."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(int(hours * 3600 / BATCH_S)):
        t = T0 + BATCH_S * k
        truth = _truth(t)
        hot = incident is not None and incident[0] * 3600 <= t - T0 < incident[1] * 3600
        at_sensor = truth[SENSOR_EDGE] * (2.5 if hot else 1.0)
        bike = rng.choice([e for e in range(len(XY)) if not (hot and e == SENSOR_EDGE)], 8)
        minutes = t + 60.0 * np.arange(5)
        edges = [REF_EDGE, *bike.tolist(), *[SENSOR_EDGE] * 5]
        times = [t, *[t + 150.0] * 8, *minutes.tolist()]
        values = [
            truth[REF_EDGE] * (1 + rng.normal(0, 0.03)),
            *(truth[bike] * (1 + rng.normal(0, 0.05, 8))).tolist(),
            *(GAIN * at_sensor + OFFSET + rng.normal(0, 2.0, 5)).tolist(),
        ]
        kinds = ["reference", *["mobile"] * 8, *["low_cost"] * 5]
        ids = ["ref", *["bike"] * 8, *["lc"] * 5]
        batch = ObservationBatch.create(edges, times, "no2", np.maximum(values, 0.0), ids, kinds)
        truth_now = truth.copy()
        truth_now[SENSOR_EDGE] = at_sensor
        out.append((batch, truth_now))
    return out


def _space() -> EdgeSpace:
    return EdgeSpace(XY, {"no2": np.full(len(XY), 30.0)})


def _run(cal: NetworkCalibration, batches: list[tuple[ObservationBatch, np.ndarray]]) -> tuple[
    np.ndarray, np.ndarray, np.ndarray
]:  # fmt: skip
    """Per batch: the calibrated mean of the sensor's readings (prequential: calibrated
    before learning the batch), their raw mean and the truth at the sensor."""
    cal_v, raw_v, true_v = [], [], []
    for batch, truth in batches:
        low = batch.select(batch.sensor_kind == "low_cost")
        values, _, _ = cal.calibrate(low)
        cal_v.append(values.mean())
        raw_v.append(low.value_ugm3.mean())
        true_v.append(truth[SENSOR_EDGE])
        cal.learn(batch)
    return np.array(cal_v), np.array(raw_v), np.array(true_v)


def test_kalman_without_process_noise_equals_bayesian_least_squares() -> None:
    """Every step equals the batch posterior of a + b x with a Gaussian prior."""
    rng = np.random.default_rng(4)
    theta0, cov0 = np.array([0.0, 1.0]), np.diag([25.0, 0.04])
    kf = AffineKalman(theta0, cov0, 0.0)
    x = rng.uniform(5, 60, 40)
    r = rng.uniform(1.0, 9.0, 40)
    y = 3.0 + 0.8 * x + rng.normal(0, np.sqrt(r))
    for n in range(1, 41):
        kf.advance(float(n), np.zeros(2))
        kf.learn_one(float(x[n - 1]), float(y[n - 1]), float(r[n - 1]))
        X = np.column_stack([np.ones(n), x[:n]])
        precision = np.linalg.inv(cov0) + (X.T / r[:n]) @ X
        mean = np.linalg.solve(precision, np.linalg.inv(cov0) @ theta0 + (X.T / r[:n]) @ y[:n])
        np.testing.assert_allclose(kf.theta, mean, rtol=1e-8)
        np.testing.assert_allclose(kf.P, np.linalg.inv(precision), rtol=1e-7, atol=1e-12)


def test_huber_weight_caps_the_step_of_an_outlier() -> None:
    """Once the state is well known, a 30-sigma innovation moves it about as far as a
    2-sigma one would (Huber), not 15 times as far (plain Kalman)."""
    cov = np.diag([0.25, 1e-4])
    kf, plain = (
        AffineKalman(np.array([0.0, 1.0]), cov, 0.0),
        AffineKalman(np.array([0.0, 1.0]), cov, 0.0),
    )
    weight = kf.learn_one(20.0, 80.0, 4.0, huber_k=2.0)
    plain.learn_one(20.0, 80.0, 4.0)
    _, var = AffineKalman(np.array([0.0, 1.0]), cov, 0.0).predict_one(20.0)
    two_sigma_step = var / (var + 4.0) * 2.0 * np.sqrt(var + 4.0)
    assert 0.0 < weight < 0.1
    assert kf.predict_one(20.0)[0] - 20.0 < 1.1 * two_sigma_step
    assert plain.predict_one(20.0)[0] - 20.0 > 10 * two_sigma_step


def test_biased_sensor_among_unbiased_readings_is_calibrated_toward_truth() -> None:
    """No station within 850 m; a bike passes now and then. The calibrated readings of a
    sensor reading 1.25 c + 6 end up far closer to the truth than its raw ones."""
    cal = NetworkCalibration(_space())
    calibrated, raw, truth = _run(cal, _batches(18.0, seed=1))
    late = slice(-72, None)  # the last 6 hours
    cal_err = np.abs(calibrated[late] - truth[late]).mean()
    raw_err = np.abs(raw[late] - truth[late]).mean()
    assert cal_err < 0.25 * raw_err, (cal_err, raw_err)
    a, b = cal.filters[("lc", "no2")].theta
    assert abs(b - 1 / GAIN) < 0.1, b
    assert abs(a + OFFSET / GAIN) < 5.0, a
    # What is left of the bias is known to be small: far below the prior's uncertainty.
    _, sd, known = cal.calibrate(ObservationBatch.create(SENSOR_EDGE, T0, "no2", 50.0, "lc",
                                                         "low_cost"))  # fmt: skip
    assert known[0] > 100
    assert sd[0] < 0.08


def test_without_unbiased_readings_the_sensor_is_left_as_it_reads() -> None:
    """Nothing to calibrate against near the sensor (only a reference station 850 m off:
    kriging variance above σ_z² / 2 there): the filter stays at its prior, raw values pass
    unchanged and its uncertainty stays that of the prior. The prior map is not data."""
    cal = NetworkCalibration(_space())
    for batch, _ in _batches(4.0, seed=2):
        cal.learn(batch.select(batch.sensor_kind != "mobile"))
    kf = cal.filters[("lc", "no2")]
    assert kf.n_learned == 0
    assert abs(kf.theta[0]) < 1e-12
    assert abs(kf.theta[1] - 1.0) < 1e-12
    values, sd, known = cal.calibrate(ObservationBatch.create(SENSOR_EDGE, T0, "no2", 40.0,
                                                              "lc", "low_cost"))  # fmt: skip
    assert values[0] == 40.0
    assert known[0] == 0
    assert sd[0] > 0.15


def _incident_shift(params: NetworkCalibrationParams) -> tuple[float, float]:
    """(calibrated / truth during the incident's last batch, relative change of the
    calibration of a fixed raw value from before to after the incident)."""
    cal = NetworkCalibration(_space(), params)
    batches = _batches(14.0, seed=3, incident=(12.0, 13.0))
    start, end = int(12 * 3600 / BATCH_S), int(13 * 3600 / BATCH_S)
    calibrated, _, truth = _run(cal, batches[:end])
    reference_raw = GAIN * 40.0 + OFFSET
    after_values, _, _ = cal.calibrate(
        ObservationBatch.create(SENSOR_EDGE, T0, "no2", reference_raw, "lc", "low_cost")
    )
    fresh = NetworkCalibration(_space(), params)
    _run(fresh, batches[:start])
    before_values, _, _ = fresh.calibrate(
        ObservationBatch.create(SENSOR_EDGE, T0, "no2", reference_raw, "lc", "low_cost")
    )
    return (
        float(calibrated[end - 1] / truth[end - 1]),
        float(after_values[0] / before_values[0] - 1.0),
    )


def test_short_incident_at_a_calibrated_sensor_is_not_absorbed_into_its_bias() -> None:
    """A ×2.5 hour at the sensor's street, seen by no other instrument: the calibrated
    readings keep showing it to its end, and the calibration hardly moves."""
    shown, moved = _incident_shift(NetworkCalibrationParams())
    assert shown > 0.85, shown
    assert abs(moved) < 0.05, moved
    # The guards are what keep it out: a fast, non-robust filter absorbs a good part.
    fast = NetworkCalibrationParams(
        offset_step_rel_per_day=3.0, gain_step_per_day=1.0, correlation_s=0.0, huber_k=np.inf
    )
    shown_fast, moved_fast = _incident_shift(fast)
    assert moved_fast < -0.15, moved_fast
    assert shown_fast < 0.6, shown_fast


def test_calibrated_sensor_feeds_the_kriging_with_its_own_small_bias() -> None:
    """The kriging takes the calibration's ``bias_sd`` instead of its fixed default."""
    cal = SensorCalibrator(_space(), pass_uncalibrated=True)
    model = CalibratedEstimator(ResidualKriging(_space()), cal)
    batches = _batches(12.0, seed=4)
    for batch, _ in batches:
        model.learn(batch)
    out = cal.transform(batches[-1][0])
    low = out.sensor_kind == "low_cost"
    assert out.bias_sd is not None
    assert (out.bias_sd[low] < KrigingParams().low_cost_bias_sd).all()
    assert np.isnan(out.bias_sd[~low]).all()
    kriging = model.estimator
    assert isinstance(kriging, ResidualKriging)
    t = float(out.time_s.max())
    snap = kriging.smoother.snapshot("no2", t, 3600.0)
    assert snap.bias_sd is not None
    at = int(np.flatnonzero(snap.edges == SENSOR_EDGE)[0])
    assert 0.0 < snap.bias_sd[at] < KrigingParams().low_cost_bias_sd


def test_batch_bias_sd_is_validated_and_follows_selection() -> None:
    b = ObservationBatch.create([1, 2, 3], T0, "no2", [1.0, 2.0, 3.0], "s", "low_cost")
    with_sd = b.with_values(b.value_ugm3, np.array([0.1, np.nan, 0.3]))
    picked = with_sd.select(np.array([True, False, True]))
    assert picked.bias_sd is not None
    assert picked.bias_sd.tolist() == [0.1, 0.3]
    with pytest.raises(ObservationError):
        b.with_values(b.value_ugm3, np.array([0.1, 0.2]))
    with pytest.raises(ObservationError):
        b.with_values(b.value_ugm3, np.array([0.1, -0.2, 0.0]))


def test_states_pickled_before_the_network_calibration_load() -> None:
    """A calibrator and a smoother pickled by the previous version load and learn on."""
    space = _space()
    cal = SensorCalibrator(space, pass_uncalibrated=True, use_network=False)
    smoother = EdgeSmoother(space)
    batches = _batches(1.0, seed=6)
    for batch, _ in batches[:6]:
        cal.learn(batch)
        smoother.learn(batch)
    old_cal = cal.__dict__.copy()
    for name in ("use_network", "network"):
        del old_cal[name]
    cal.__dict__ = old_cal
    old_smoother = smoother.__dict__.copy()
    for name in ("weight_sq", "weighted_time_s", "bias_weight"):
        del old_smoother[name]
    smoother.__dict__ = old_smoother
    cal_back = pickle.loads(pickle.dumps(cal))
    smoother_back = pickle.loads(pickle.dumps(smoother))
    assert cal_back.network is not None
    for batch, _ in batches[6:]:
        cal_back.learn(batch)
        smoother_back.learn(batch)
    assert ("lc", "no2") in cal_back.network.filters
    old_snap = pickle.loads(pickle.dumps(smoother)).snapshot("no2", float(T0 + 1500.0), 3600.0)
    assert old_snap.bias_sd is not None
    assert old_snap.low_cost_share is not None
    np.testing.assert_allclose(old_snap.bias_sd, 0.1 * old_snap.low_cost_share, rtol=1e-12)
    snap = smoother_back.snapshot("no2", float(batches[-1][0].time_s.max()), 3600.0)
    assert snap.n_effective is not None
    assert (snap.n_effective >= 1.0 - 1e-9).all()


def _many_sensors(seed: int, n_batches: int) -> list[ObservationBatch]:
    """Batches with several low-cost sensors and two pollutants, one sensor on two edges."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_batches):
        t = T0 + BATCH_S * k
        truth = _truth(t)
        edges = [REF_EDGE, *rng.choice(len(XY), 6).tolist()]
        kinds = ["reference", *["mobile"] * 6]
        ids = ["ref", *["bike"] * 6]
        for s in range(5):
            edges += [3 + 7 * s, 3 + 7 * s]
            kinds += ["low_cost", "low_cost"]
            ids += [f"lc{s}", f"lc{s}"]
        edges += [SENSOR_EDGE, SENSOR_EDGE + 1]  # a sensor that moved
        kinds += ["low_cost", "low_cost"]
        ids += ["moved", "moved"]
        n = len(edges)
        values = (
            truth[edges]
            * (1 + rng.normal(0, 0.05, n))
            * np.where(np.array(kinds) == "low_cost", 1.2, 1.0)
        )
        pollutants = rng.choice(["no2", "pm10"], n)
        out.append(
            ObservationBatch.create(
                edges, t + rng.uniform(0, BATCH_S, n), pollutants, values, ids, kinds
            )
        )
    return out


def _reference_learn(cal: NetworkCalibration, batch: ObservationBatch) -> None:
    """NetworkCalibration.learn written with AffineKalman's verbs, one key at a time."""
    prm = cal.params
    low = batch.sensor_kind == "low_cost"
    cal.anchor.learn(batch.select(~low))
    t_s = float(batch.time_s.max())
    for p in cal.space.pollutants:
        rows = np.flatnonzero(low & (batch.pollutant == p))
        keys = sorted(
            {(s, int(e)) for s, e in zip(batch.sensor_id[rows], batch.edge_id[rows], strict=True)}
        )
        if not keys:
            continue
        y, r = cal._anchor_data(p, t_s, np.array([e for _, e in keys], dtype=np.int64))
        typical = cal.typical_ugm3[p]
        step = np.array([(prm.offset_step_rel_per_day * typical) ** 2, prm.gain_step_per_day**2])
        for k, (sensor, edge) in enumerate(keys):
            kf = cal.filters.get((sensor, p))
            if kf is None:
                cov = np.diag([(prm.offset_sd_rel * typical) ** 2, prm.gain_sd**2])
                kf = cal.filters[(sensor, p)] = AffineKalman(np.array([0.0, 1.0]), cov, t_s)
            dt_s = t_s - kf.learned_s
            kf.advance(t_s, step / 86_400.0)
            if not np.isfinite(r[k]):
                continue
            mine = rows[(batch.sensor_id[rows] == sensor) & (batch.edge_id[rows] == edge)]
            x = float(batch.value_ugm3[mine].mean())
            kf.learn_one(
                x, float(y[k]), float(r[k]), prm.huber_k, max(1.0, 1800.0 / max(dt_s, 1.0))
            )


def test_compiled_updates_and_calibration_equal_the_filter_verbs() -> None:
    space = EdgeSpace(XY, {"no2": np.full(len(XY), 30.0), "pm10": np.full(len(XY), 20.0)})
    fast, slow = NetworkCalibration(space), NetworkCalibration(space)
    learned = 0
    for batch in _many_sensors(5, 40):
        fast.learn(batch)
        _reference_learn(slow, batch)
        assert fast.filters.keys() == slow.filters.keys()
        for key, kf in fast.filters.items():
            ref = slow.filters[key]
            np.testing.assert_allclose(kf.theta, ref.theta, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(kf.P, ref.P, rtol=1e-9, atol=1e-12)
            assert (kf.time_s, kf.learned_s, kf.n_learned) == (
                ref.time_s,
                ref.learned_s,
                ref.n_learned,
            )
        learned = sum(kf.n_learned for kf in fast.filters.values())
        values, sd, count = fast.calibrate(batch)
        for i in range(len(batch)):
            kf = fast.filters.get((str(batch.sensor_id[i]), str(batch.pollutant[i])))
            if batch.sensor_kind[i] != "low_cost" or kf is None:
                assert values[i] == batch.value_ugm3[i]
                assert np.isnan(sd[i])
                assert count[i] == 0
                continue
            want, var = kf.predict_one(float(batch.value_ugm3[i]))
            floor = 0.1 * fast.typical_ugm3[str(batch.pollutant[i])]
            assert values[i] == pytest.approx(max(want, 0.0), rel=1e-12)
            assert sd[i] == pytest.approx(min(np.sqrt(max(var, 0.0)) / max(want, floor), 1.0))
            assert count[i] == kf.n_learned
    assert learned > 50  # the updates were really exercised
    assert fast.filters[("moved", "no2")].n_learned + fast.filters[("moved", "pm10")].n_learned > 0


def test_transform_picks_colocated_then_network_then_drops() -> None:
    space = EdgeSpace(XY, {"no2": np.full(len(XY), 30.0), "pm10": np.full(len(XY), 20.0)})
    for pass_uncalibrated in (False, True):
        cal = SensorCalibrator(space, pass_uncalibrated=pass_uncalibrated, min_pairs=3)
        batches = _many_sensors(6, 12)
        for batch in batches:
            cal.learn(batch)
        # lc0/no2 as if co-located: its least-squares model says c = 2 + 0.5 raw.
        rls = cal.models[("lc0", "no2")] = RecursiveLeastSquares(2)
        rls.theta, rls.n_learned = np.array([2.0, 0.5]), 10
        batch = batches[-1]
        assert cal.network is not None
        net_values, net_sd, net_count = cal.network.calibrate(batch)
        out = cal.transform(batch)
        rows: list[tuple[int, float, float]] = []  # (row, value, bias sd) expected
        seen = set()
        for i in range(len(batch)):
            key = (str(batch.sensor_id[i]), str(batch.pollutant[i]))
            raw = float(batch.value_ugm3[i])
            if batch.sensor_kind[i] != "low_cost":
                rows.append((i, raw, np.nan))
            elif key == ("lc0", "no2"):
                rows.append((i, max(2.0 + 0.5 * raw, 0.0), np.nan))
                seen.add("colocated")
            elif net_count[i] >= 3 or (pass_uncalibrated and net_count[i]):
                rows.append((i, float(net_values[i]), float(net_sd[i])))
                seen.add("network")
            elif pass_uncalibrated:
                rows.append((i, raw, np.nan))
                seen.add("raw")
            else:
                seen.add("dropped")
        assert seen >= {"colocated", "network"}
        np.testing.assert_array_equal(out.edge_id, batch.edge_id[[r[0] for r in rows]])
        np.testing.assert_allclose(out.value_ugm3, [r[1] for r in rows], rtol=1e-12)
        assert out.bias_sd is not None
        np.testing.assert_allclose(out.bias_sd, [r[2] for r in rows], rtol=1e-12)
