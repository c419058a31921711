"""Simulation time: parsing and printing times and durations, and the wall-clock seam.

Times are timezone-aware UTC; on output they are ISO 8601 with a ``Z``. The wall clock
is only used to pace a live replay (``--speed``); tests pass :class:`FakeClock`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Protocol

from airpath.errors import SimulationError

_UNIT_S = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(min|sec|s|m|h|d)")


def parse_duration_s(text: str) -> float:
    """Seconds in a duration such as ``24h``, ``90min``, ``1h30m``, ``45s`` or ``2d``.

    >>> parse_duration_s("1h30min")
    5400.0
    """
    s = text.strip().lower().replace(" ", "")
    parts = _PART.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise SimulationError(f"not a duration (e.g. 24h, 90min, 30s): {text!r}")
    total_s = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if total_s <= 0:
        raise SimulationError(f"duration must be positive, got {text!r}")
    return total_s


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimulationError(f"not an ISO 8601 time (e.g. 2026-05-01T00:00Z): {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC)


def format_time(t: dt.datetime) -> str:
    """ISO 8601 UTC with a ``Z``, to the second (or the millisecond when not whole)."""
    t = t.astimezone(dt.UTC)
    if t.microsecond:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def slice_name(t: dt.datetime) -> str:
    """File stem of the slice starting at ``t``: ``2026-05-01T08-00`` (UTC, no colons)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H-%M")


class Clock(Protocol):
    """Wall time, to pace a live replay."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that advances only when slept on (records the sleeps)."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds
