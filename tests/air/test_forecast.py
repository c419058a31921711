"""The level forecaster: prequential skill against persistence on a daily cycle."""

from __future__ import annotations

import math

import numpy as np

from airpath.air.forecast import LevelForecaster

T0 = 1_714_521_600.0  # 2024-05-01 00:00 UTC


def _series(seed: int, days: int, step_s: float = 300.0) -> tuple[np.ndarray, np.ndarray]:
    """Daily cycle (amplitude 0.5) + AR(1) noise (φ = 0.97 per 5 min, sd ≈ 0.12)."""
    rng = np.random.default_rng(seed)
    n = int(days * 86_400 / step_s)
    t = T0 + step_s * np.arange(n)
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.97 * noise[i - 1] + rng.normal(0, 0.03)
    return t, 0.5 * np.sin(2 * np.pi * (t - T0) / 86_400 + 1.0) + noise


def test_beats_persistence_at_60_min_after_warm_up() -> None:
    t, level = _series(seed=5, days=6)
    fc = LevelForecaster()
    for ti, li in zip(t[: len(t) // 2], level[: len(t) // 2], strict=True):
        fc.learn(float(ti), float(li))
    # Score only the second half: reset the running metrics by a fresh pair of counters.
    model_sq, persist_sq, n = 0.0, 0.0, 0
    steps = int(3600 / 300)
    for i in range(len(t) // 2, len(t) - steps):
        forecast = fc.forecast(float(t[i]), float(level[i]), 60.0)
        model_sq += (forecast - level[i + steps]) ** 2
        persist_sq += (level[i] - level[i + steps]) ** 2
        n += 1
        fc.learn(float(t[i]), float(level[i]))
    model_rmse, persist_rmse = math.sqrt(model_sq / n), math.sqrt(persist_sq / n)
    assert model_rmse < 0.9 * persist_rmse, (model_rmse, persist_rmse)
    # The running prequential metrics say the same.
    assert fc.rmse()[60.0] < fc.persistence_rmse()[60.0]
    assert set(fc.rmse()) == {15.0, 30.0, 60.0}


def test_untrained_forecaster_is_persistence_and_reset_forgets() -> None:
    fc = LevelForecaster()
    assert fc.forecast(T0, 0.3, 60.0) == 0.3
    t, level = _series(seed=6, days=2)
    for ti, li in zip(t, level, strict=True):
        fc.learn(float(ti), float(li))
    assert fc.n_learned[60.0] > fc.warm_up
    fc.reset()
    assert fc.forecast(T0, 0.3, 60.0) == 0.3
    assert fc.n_learned == {15.0: 0, 30.0: 0, 60.0: 0}
