"""The per-sensor stateful step of the streaming job (``transformWithStateInPandas``).

Rows are grouped by sensor id; each group is judged by :func:`airpath.air.gate.gate_lines`
with the sensor's :class:`~airpath.air.gate.SensorMemory`, kept in a value state on the
RocksDB state store. The processor emits exactly one row per input row — accepted
(``status = "valid"``) or rejected with its reason and the original payload — so that
rows in = valid + rejected holds for every batch by construction, and is checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle

from airpath.air.gate import REJECTED_COLUMNS, VALID_COLUMNS, Clock, SensorMemory, gate_lines
from airpath.air.rules import AreaLike

NO_SENSOR = "\u0000no-sensor-id"  # group key of lines with no readable sensor id
# 30 days of event time: the memory of a sensor that stopped reporting is dropped after
# that (an event-time timer; its duplicate keys are long behind the watermark and its
# counters restart if it returns). The timer moves at most once a day per sensor, since
# each move costs calls to the state store.
STATE_TTL_MS = 30 * 24 * 3600 * 1000
TIMER_STEP_MS = 24 * 3600 * 1000

OUTPUT_SCHEMA = (
    "status string, reason string, message string, payload string, sensor_id string, "
    "sensor_kind string, lat double, lon double, time_ms long, pollutant string, "
    "value double, unit string, value_ugm3 double, speed_mps double, heading_deg double"
)
OUTPUT_COLUMNS = tuple(part.strip().split(" ")[0] for part in OUTPUT_SCHEMA.split(","))


class SensorGateProcessor(StatefulProcessor):
    """Validation, late-data policy and exact de-duplication per sensor."""

    def __init__(self, *, area: AreaLike | None, max_age: dt.timedelta, clock: Clock) -> None:
        self.area = area
        self.max_age = max_age
        self.clock: Clock = clock

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.memory = handle.getValueState("memory", "json string, timer_ms long")

    def handleInputRows(self, key: Any, rows: Any, timerValues: Any) -> Iterator[pd.DataFrame]:
        sensor = str(key[0])
        lines: list[str] = []
        for frame in rows:
            lines.extend(frame["payload"].tolist())
        stored = self.memory.get() if self.memory.exists() else None
        memory = SensorMemory.from_json(stored[0] if stored else None)
        timer_ms = int(stored[1]) if stored and stored[1] is not None else -1
        watermark_ms = int(timerValues.getCurrentWatermarkInMs())
        result = gate_lines(
            None if sensor == NO_SENSOR else sensor,
            lines,
            memory,
            now_ms=int(timerValues.getCurrentProcessingTimeInMs()),
            watermark_ms=watermark_ms if watermark_ms > 0 else None,
            area=self.area,
            max_age=self.max_age,
            clock=self.clock,
        )
        expiry = max(result.memory.last_time_ms, watermark_ms) + STATE_TTL_MS
        if expiry > timer_ms + TIMER_STEP_MS:
            if timer_ms >= 0:
                self.handle.deleteTimer(timer_ms)
            self.handle.registerTimer(expiry)
            timer_ms = expiry
        self.memory.update((result.memory.to_json(), timer_ms))
        yield to_output(sensor, result.valid, result.rejected)

    def handleExpiredTimer(self, key: Any, timerValues: Any, expiredTimerInfo: Any) -> Any:
        self.memory.clear()
        return iter(())

    def close(self) -> None:
        pass


def to_output(sensor: str, valid: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """Valid and rejected rows of one group in the processor's output schema."""
    good = valid.assign(status="valid", reason=None, message=None, payload=None)
    bad = rejected.assign(status="rejected", sensor_id=None if sensor == NO_SENSOR else sensor)
    for name in VALID_COLUMNS:
        if name not in bad.columns:
            bad[name] = None
    assert set(REJECTED_COLUMNS) <= set(good.columns)
    frames = [f[list(OUTPUT_COLUMNS)] for f in (good, bad) if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out.astype({"time_ms": "Int64"})
