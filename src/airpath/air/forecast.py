"""Online forecasts of the city-wide log-ratio level at +15, +30 and +60 minutes.

The level ``L(t)`` (the regional "weather" factor: log of observed over prior, city-wide)
moves smoothly with a daily cycle. For each horizon ``h`` a river
``linear_model.LinearRegression`` learns the *change* ``L(t+h) - L(t)`` from

* ``L(t)`` (mean reversion of weather anomalies),
* ``L(t) - L(t - 15 min)`` (momentum),
* first and second time-of-day harmonics (the daily traffic/boundary-layer cycle),
* only when a learnt diurnal profile ``D`` is given (``diurnal``, fitted from the history
  lake by :func:`airpath.air.training.diurnal_profile`): its change ``D(t+h) - D(t)``,
  which carries the weekday/weekend and local-time shape the UTC harmonics cannot.

Learning the change makes an untrained model exactly persistence, and so does a model that
has not beaten persistence so far (prequential RMSE per horizon, see ``skilful``): a noisy
level or a regime the features do not describe costs nothing over persistence. Without a profile the
features (and hence every number) are those of a forecaster that never heard of one; a
profile set mid-stream (``forecaster.diurnal = …``) is a new key in the feature dict,
whose river weight starts at 0, so the learnt weights carry on undisturbed.

Labels arrive late: the level seen at ``t`` is the target of the features stored at
``t - h`` (matched within ``tolerance_s``). Evaluation is prequential — each forecast is
scored when its target arrives and before the model learns from it — as a running RMSE
per horizon, next to the running RMSE of persistence (``rmse()``, ``persistence_rmse()``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from river import linear_model, metrics, optim

DAY_S = 86_400.0
# river is only partly annotated; its objects are handled as Any here.
_RMSE: Any = metrics.RMSE


@dataclass
class _Step:
    time_s: float
    level: float
    features: dict[str, float]
    forecasts: dict[float, float]  # horizon (min) → forecast level made at time_s
    raw: dict[float, float]  # the same from the model alone, served or not


class LevelForecaster:
    """One online linear model per horizon for one pollutant's level.

    Expects updates roughly every ``tolerance_s * 2`` seconds or more often (a 5-min
    streaming batch cadence is typical); irregular gaps only skip training pairs.
    ``diurnal`` maps a UTC time (epoch s) to the expected level (log units).
    """

    # A class-level default: model states pickled before the hook existed load as None.
    diurnal: Callable[[float], float] | None = None

    def __init__(
        self,
        horizons_min: Sequence[float] = (15.0, 30.0, 60.0),
        *,
        learning_rate: float = 0.02,
        tolerance_s: float = 150.0,
        warm_up: int = 48,
        diurnal: Callable[[float], float] | None = None,
    ) -> None:
        self.horizons_min = tuple(float(h) for h in horizons_min)
        self.learning_rate = float(learning_rate)
        self.tolerance_s = float(tolerance_s)
        self.warm_up = int(warm_up)
        self.diurnal = diurnal
        self.reset()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """States pickled before the model's own skill was kept start it afresh (so the
        model serves persistence until it has shown skill again)."""
        self.__dict__.update(state)
        if "_raw_rmse" not in state:
            self._raw_rmse: dict[float, Any] = {h: _RMSE() for h in self.horizons_min}
            for step in self.history:
                step.raw = dict(step.forecasts)

    def reset(self) -> None:
        """Forget everything (after a detected drift); forecasts fall back to persistence."""
        self.models: dict[float, Any] = {
            h: linear_model.LinearRegression(
                optimizer=optim.SGD(self.learning_rate), intercept_lr=self.learning_rate
            )
            for h in self.horizons_min
        }
        self.n_learned = dict.fromkeys(self.horizons_min, 0)
        self._rmse: dict[float, Any] = {h: _RMSE() for h in self.horizons_min}
        self._persistence: dict[float, Any] = {h: _RMSE() for h in self.horizons_min}
        self._raw_rmse = {h: _RMSE() for h in self.horizons_min}
        self.history: deque[_Step] = deque()

    def learn(self, time_s: float, level: float) -> None:
        """Score and learn the forecasts whose target time is ``time_s``, then store a step."""
        for h in self.horizons_min:
            past = self._at(time_s - 60.0 * h)
            if past is None:
                continue
            self._rmse[h].update(level, past.forecasts[h])
            self._persistence[h].update(level, past.level)
            self._raw_rmse[h].update(level, past.raw[h])
            x = self._with_diurnal(h, past.time_s, past.features)
            self.models[h].learn_one(x, level - past.level)
            self.n_learned[h] += 1
        features = self._features(time_s, level)
        raw = {h: level + self._model_delta(h, time_s, features) for h in self.horizons_min}
        forecasts = {h: raw[h] if self.skilful(h) else level for h in self.horizons_min}
        self.history.append(_Step(time_s, level, features, forecasts, raw))
        horizon_s = 60.0 * max(self.horizons_min, default=0.0) + 2 * self.tolerance_s
        while self.history and self.history[0].time_s < time_s - horizon_s - 900.0:
            self.history.popleft()

    def forecast(self, time_s: float, level: float, horizon_min: float) -> float:
        """The level forecast ``horizon_min`` after ``time_s`` given the level now."""
        if horizon_min <= 0:
            return level
        h = min(self.horizons_min, key=lambda k: abs(k - horizon_min), default=None)
        if h is None:
            return level
        return level + self._delta(h, time_s, self._features(time_s, level)) * horizon_min / h

    def rmse(self) -> dict[float, float]:
        """Prequential RMSE of the model's level forecasts, per horizon (log units)."""
        return {h: m.get() for h, m in self._rmse.items()}

    def skilful(self, h: float) -> bool:
        """Whether the model's own forecasts (kept even while not served) have beaten
        persistence so far at horizon ``h`` (prequential RMSE); until they have, the
        forecasts served are persistence."""
        return bool(self._raw_rmse[h].get() < self._persistence[h].get())

    def persistence_rmse(self) -> dict[float, float]:
        """Prequential RMSE of persistence (``L(t+h) = L(t)``) over the same targets."""
        return {h: m.get() for h, m in self._persistence.items()}

    def _delta(self, h: float, time_s: float, features: dict[str, float]) -> float:
        return self._model_delta(h, time_s, features) if self.skilful(h) else 0.0

    def _model_delta(self, h: float, time_s: float, features: dict[str, float]) -> float:
        if self.n_learned[h] < self.warm_up:
            return 0.0
        return float(self.models[h].predict_one(self._with_diurnal(h, time_s, features)))

    def _with_diurnal(
        self, h: float, time_s: float, features: dict[str, float]
    ) -> dict[str, float]:
        """``features`` itself without a profile; with one, plus the profile's change over
        the horizon (computed when used, so a newly adopted profile applies at once)."""
        if self.diurnal is None:
            return features
        change = self.diurnal(time_s + 60.0 * h) - self.diurnal(time_s)
        return {**features, "diurnal_change": change}

    def _at(self, time_s: float) -> _Step | None:
        best = None
        for step in self.history:
            if abs(step.time_s - time_s) <= self.tolerance_s and (
                best is None or abs(step.time_s - time_s) < abs(best.time_s - time_s)
            ):
                best = step
        return best

    def _features(self, time_s: float, level: float) -> dict[str, float]:
        lag = self._at(time_s - 900.0)
        phase = 2 * math.pi * (time_s % DAY_S) / DAY_S
        return {
            "level": level,
            "momentum_15min": level - lag.level if lag is not None else 0.0,
            "day_sin": math.sin(phase),
            "day_cos": math.cos(phase),
            "half_day_sin": math.sin(2 * phase),
            "half_day_cos": math.cos(2 * phase),
        }
