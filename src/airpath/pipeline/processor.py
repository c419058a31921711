"""The per-sensor stateful step of the streaming job (``transformWithStateInPandas``).

Sensors are hashed into a fixed number of buckets and rows are grouped by bucket; each
group is judged by :func:`airpath.air.gate.gate_lines` with the
:class:`~airpath.air.sensormemory.SensorMemory` of every sensor in the bucket, kept as one value
per bucket on the RocksDB state store. Why buckets rather than one key per sensor: in
PySpark every grouping key costs a few milliseconds (a pandas frame and round trips to
the state server), so with thousands of sensors per batch the per-key overhead, not the
readings, would set the throughput. The memory of each sensor is the same either way.

The processor emits exactly one row per input row — accepted (``status = "valid"``) or
rejected with its reason and the original payload — so that rows in = valid + rejected
holds for every batch by construction, and is checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle

from airpath.air.gate import (
    REJECTED_COLUMNS,
    VALID_COLUMNS,
    Clock,
    gate_lines,
)
from airpath.air.rules import AreaLike
from airpath.air.sensormemory import pack_memories, unpack_memories

# 30 days of event time: the memory of a sensor that stopped reporting is dropped after
# that (its duplicate keys are long behind the watermark; its counters restart if it
# comes back).
FORGET_AFTER_MS = 30 * 24 * 3600 * 1000
DEFAULT_BUCKETS = 32  # several per core, few enough that per-key costs stay small

OUTPUT_SCHEMA = (
    "status string, reason string, message string, payload string, sensor_id string, "
    "sensor_kind string, lat double, lon double, time_ms long, pollutant string, "
    "value double, unit string, value_ugm3 double, speed_mps double, heading_deg double"
)
OUTPUT_COLUMNS = tuple(part.strip().split(" ")[0] for part in OUTPUT_SCHEMA.split(","))


class SensorGateProcessor(StatefulProcessor):
    """Validation, late-data policy and exact de-duplication, per sensor."""

    def __init__(self, *, area: AreaLike | None, max_age: dt.timedelta, clock: Clock) -> None:
        self.area = area
        self.max_age = max_age
        self.clock: Clock = clock

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.memories = handle.getValueState("memories", "json string, keys binary")

    def handleInputRows(self, key: Any, rows: Any, timerValues: Any) -> Iterator[pd.DataFrame]:
        lines: list[str] = []
        for frame in rows:
            lines.extend(frame["payload"].tolist())
        stored = self.memories.get() if self.memories.exists() else None
        watermark_ms = int(timerValues.getCurrentWatermarkInMs())
        result = gate_lines(
            lines,
            unpack_memories(stored[0], stored[1]) if stored else {},
            now_ms=int(timerValues.getCurrentProcessingTimeInMs()),
            watermark_ms=watermark_ms if watermark_ms > 0 else None,
            area=self.area,
            max_age=self.max_age,
            clock=self.clock,
            forget_after_ms=FORGET_AFTER_MS,
        )
        self.memories.update(pack_memories(result.memories))
        yield to_output(result.valid, result.rejected)

    def close(self) -> None:
        pass


def to_output(valid: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """Valid and rejected rows of one group in the processor's output schema."""
    good = valid.assign(status="valid", reason=None, message=None, payload=None)
    bad = rejected.assign(status="rejected")
    for name in VALID_COLUMNS:
        if name not in bad.columns:
            bad[name] = None
    assert set(REJECTED_COLUMNS) <= set(good.columns)
    frames = [f[list(OUTPUT_COLUMNS)] for f in (good, bad) if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out.astype({"time_ms": "Int64"})
