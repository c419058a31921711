"""The per-sensor gate of the streaming job: parse, validate, drop late and repeated readings.

The Spark job groups each micro-batch's raw lines by sensor bucket and hands every group,
with what it remembers of those sensors, to :func:`gate_lines`. Everything here is plain
Python so that it is tested without Spark; :mod:`airpath.pipeline.processor` only moves
the :class:`SensorMemory` of each sensor in and out of the RocksDB state store.

Late-data policy (stated once, applied here):

* the job's event-time watermark trails the newest event time it has seen by a fixed
  delay (10 min by default); a reading older than the watermark is rejected as ``late``
  and dead-lettered — the field for its time has been published and is not rewritten;
* a reading within the watermark is accepted in any order; its (time, pollutant) key is
  remembered until the watermark passes it, so a repeat (an MQTT redelivery, a file
  landed twice) is rejected as ``duplicate`` and never counted twice.

Clocks: ``now_ms`` is the micro-batch's processing time, which Spark records in its
offset log, so a batch replayed after a crash is judged exactly as the first time. When a
recorded day is replayed (``clock="event"``) there is no wall clock to compare with:
ages are measured from the newest reading of the sensor in the batch and nothing can be
"in the future".
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from airpath.air.parsers import parse_jsonl
from airpath.air.readings import Rejected, validate
from airpath.air.rules import DEFAULT_MAX_AGE, AreaLike, Key, RecentKeys, RejectReason, time_ms
from airpath.air.schema import Reading

Clock = Literal["wall", "event"]

VALID_COLUMNS = (
    "sensor_id",
    "sensor_kind",
    "lat",
    "lon",
    "time_ms",
    "pollutant",
    "value",
    "unit",
    "value_ugm3",
    "speed_mps",
    "heading_deg",
)
REJECTED_COLUMNS = ("reason", "message", "payload")


@dataclass
class SensorMemory:
    """What the job keeps of one sensor between micro-batches.

    ``keys`` maps a pollutant to the event times (ms) of its accepted readings that the
    watermark has not yet passed; the rest are running counts and the latest reading
    (served by ``GET /v1/sensors``).
    """

    keys: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)  # sorted
    n_in: int = 0
    n_valid: int = 0
    n_rejected: int = 0
    last_time_ms: int = -1
    last_kind: str = ""
    last_lat: float = math.nan
    last_lon: float = math.nan
    last_value_ugm3: dict[str, float] = field(default_factory=dict)

    def same_as(self, other: SensorMemory) -> bool:
        """Equal, keys included (arrays do not compare with ``==``)."""
        plain = {k: v for k, v in self.__dict__.items() if k != "keys"}
        other_plain = {k: v for k, v in other.__dict__.items() if k != "keys"}
        return (
            json.dumps(plain, sort_keys=True) == json.dumps(other_plain, sort_keys=True)
            and self.keys.keys() == other.keys.keys()
            and all(np.array_equal(self.keys[p], other.keys[p]) for p in self.keys)
        )


@dataclass(frozen=True)
class GateResult:
    """Accepted rows (:data:`VALID_COLUMNS`), rejected rows (:data:`REJECTED_COLUMNS` plus
    ``sensor_id`` when the line names one) and the memories after the batch."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    memories: dict[str, SensorMemory]


def gate_lines(
    lines: Sequence[str],
    memories: Mapping[str, SensorMemory],
    *,
    now_ms: int,
    watermark_ms: int | None,
    area: AreaLike | None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    clock: Clock = "wall",
    forget_after_ms: int | None = None,
) -> GateResult:
    """Judge one micro-batch's raw lines of some sensors; every line ends in one output.

    ``memories`` holds what is remembered of each sensor (absent: a new sensor);
    ``watermark_ms`` is ``None`` before the first watermark. A sensor not heard of for
    ``forget_after_ms`` of event time behind the watermark is forgotten.
    """
    readings, texts, rejected = _parse(lines)
    if clock == "event":
        newest = max((time_ms(r.time) for r in readings), default=now_ms)
        now = _from_ms(newest)
    else:
        now = _from_ms(now_ms)
    seen = _Remembered(memories)
    watermark = None if watermark_ms is None or watermark_ms <= 0 else _from_ms(watermark_ms)
    result = validate(
        readings,
        now=now,
        area=area,
        max_age=max_age,
        seen=seen,
        watermark=watermark,
        source="stream",
        typed=True,
        payloads=texts,
    )
    rejected = [*rejected, *result.rejected]
    valid = pd.DataFrame(
        {
            "sensor_id": [v.reading.sensor_id for v in result.valid],
            "sensor_kind": [v.reading.sensor_kind.value for v in result.valid],
            "lat": [v.reading.lat for v in result.valid],
            "lon": [v.reading.lon for v in result.valid],
            "time_ms": [time_ms(v.reading.time) for v in result.valid],
            "pollutant": [v.reading.pollutant.value for v in result.valid],
            "value": [v.reading.value for v in result.valid],
            "unit": [v.reading.unit.value for v in result.valid],
            "value_ugm3": [v.value_ugm3 for v in result.valid],
            "speed_mps": [_nan(v.reading.speed_mps) for v in result.valid],
            "heading_deg": [_nan(v.reading.heading_deg) for v in result.valid],
        },
        columns=list(VALID_COLUMNS),
    )
    bad = pd.DataFrame(
        {
            "reason": [r.reason.value for r in rejected],
            "message": [r.message for r in rejected],
            "payload": [r.payload for r in rejected],
            "sensor_id": [_sensor_of(r.payload) for r in rejected],
        },
        columns=[*REJECTED_COLUMNS, "sensor_id"],
    )
    horizon_ms = time_ms(now - max_age)
    if watermark is not None:
        horizon_ms = max(horizon_ms, time_ms(watermark))
    out = _remember(memories, valid, bad, horizon_ms)
    if forget_after_ms is not None and watermark_ms:
        out = {k: m for k, m in out.items() if m.last_time_ms >= watermark_ms - forget_after_ms}
    return GateResult(valid, bad, out)


class _Remembered(RecentKeys):
    """The keys the memories hold (sorted arrays, searched in place) plus the keys of this
    batch: a bucket remembers millions of keys and a batch looks up a few thousand."""

    def __init__(self, memories: Mapping[str, SensorMemory]) -> None:
        super().__init__(max_size=1)
        self.memories = memories
        self.added: set[Key] = set()

    def __contains__(self, key: object) -> bool:
        if key in self.added:
            return True
        if not isinstance(key, tuple) or len(key) != 3:
            return False
        sensor, t, pollutant = key
        memory = self.memories.get(str(sensor))
        held = memory.keys.get(str(pollutant)) if memory is not None else None
        if held is None or len(held) == 0:
            return False
        i = int(np.searchsorted(held, t))
        return i < len(held) and int(held[i]) == t

    def add(self, key: Key) -> None:
        self.added.add(key)


def _parse(lines: Sequence[str]) -> tuple[list[Reading], list[str], list[Rejected]]:
    """Readings with their lines, and a rejection for every line that holds none (bad
    JSON, not an object, a missing field or a wrong type, or blank: every input row must
    come out of the gate)."""
    readings: list[Reading] = []
    texts: list[str] = []
    rejected: list[Rejected] = []
    for line in lines:
        if not line.strip():
            rejected.append(Rejected(RejectReason.MALFORMED, "blank line", line, "stream"))
            continue
        got, bad = parse_jsonl([line], source="stream")
        if got:
            readings.append(got[0])
            texts.append(line.rstrip("\r\n"))
        else:
            rejected.extend(bad)
    return readings, texts, rejected


def _sensor_of(payload: str) -> str | None:
    """The sensor id a rejected line names, if it is a JSON object with a text one."""
    try:
        record = json.loads(payload)
    except ValueError:
        return None
    sensor = record.get("sensor_id") if isinstance(record, dict) else None
    return sensor if isinstance(sensor, str) and sensor else None


def _remember(
    memories: Mapping[str, SensorMemory],
    valid: pd.DataFrame,
    rejected: pd.DataFrame,
    horizon_ms: int,
) -> dict[str, SensorMemory]:
    """The memories after this batch: keys older than ``horizon_ms`` are forgotten, since
    a reading that old is rejected as stale or late before duplicates are looked for.
    Lines that name no sensor are counted by the job, not per sensor."""
    out = {k: _copy(m, horizon_ms) for k, m in memories.items()}
    for sensor in rejected["sensor_id"].tolist():
        if sensor is not None:
            m = out.setdefault(sensor, SensorMemory())
            m.n_in += 1
            m.n_rejected += 1
    rows = zip(
        valid["sensor_id"].tolist(),
        valid["pollutant"].tolist(),
        valid["time_ms"].tolist(),
        valid["value_ugm3"].tolist(),
        valid["sensor_kind"].tolist(),
        valid["lat"].tolist(),
        valid["lon"].tolist(),
        strict=True,
    )
    newest_of: dict[tuple[str, str], int] = {}
    new_keys: dict[tuple[str, str], list[int]] = {}
    for sensor, p, t, v, kind, lat, lon in rows:
        m = out.setdefault(sensor, SensorMemory())
        m.n_in += 1
        m.n_valid += 1
        if t >= horizon_ms:
            new_keys.setdefault((sensor, p), []).append(t)
        if t >= newest_of.get((sensor, p), -1):
            newest_of[(sensor, p)] = t
            if t >= m.last_time_ms - 60_000:
                m.last_value_ugm3[p] = v
        if t >= m.last_time_ms:
            m.last_time_ms, m.last_kind, m.last_lat, m.last_lon = t, kind, lat, lon
    for (sensor, p), ts in new_keys.items():
        m = out[sensor]
        old = m.keys.get(p)
        # Accepted keys are new by construction (repeats were rejected), so a merge
        # needs no de-duplication.
        fresh = np.asarray(ts, dtype=np.int64)
        merged = fresh if old is None else np.concatenate([old, fresh])
        merged.sort(kind="stable")
        m.keys[p] = merged
    for m in out.values():
        m.keys = {p: ts for p, ts in sorted(m.keys.items()) if len(ts)}
    return out


def _copy(m: SensorMemory, horizon_ms: int) -> SensorMemory:
    return SensorMemory(
        keys={p: ts[ts >= horizon_ms] for p, ts in m.keys.items()},
        n_in=m.n_in,
        n_valid=m.n_valid,
        n_rejected=m.n_rejected,
        last_time_ms=m.last_time_ms,
        last_kind=m.last_kind,
        last_lat=m.last_lat,
        last_lon=m.last_lon,
        last_value_ugm3=dict(m.last_value_ugm3),
    )


def pack_memories(memories: Mapping[str, SensorMemory]) -> tuple[str, bytes]:
    """One bucket's memories as the state store's value: JSON for the small fields, and
    every key array concatenated into one little-endian int64 blob (at high rates a
    bucket remembers millions of keys; as JSON numbers they would dominate the batch)."""
    meta: dict[str, Any] = {}
    arrays: list[npt.NDArray[np.int64]] = []
    for sensor, m in sorted(memories.items()):
        item = {k: v for k, v in m.__dict__.items() if k != "keys"}
        item["key_counts"] = [[p, len(a)] for p, a in sorted(m.keys.items())]
        arrays.extend(a for _, a in sorted(m.keys.items()))
        meta[sensor] = item
    blob = np.concatenate(arrays).astype("<i8").tobytes() if arrays else b""
    return json.dumps(meta, separators=(",", ":"), allow_nan=True), blob


def unpack_memories(text: str | None, blob: bytes | None) -> dict[str, SensorMemory]:
    if not text:
        return {}
    keys = np.frombuffer(blob or b"", dtype="<i8")
    out: dict[str, SensorMemory] = {}
    at = 0
    for sensor, item in json.loads(text).items():
        arrays = {}
        for p, n in item.pop("key_counts"):
            arrays[p] = keys[at : at + n].astype(np.int64)
            at += n
        out[sensor] = SensorMemory(keys=arrays, **item)
    return out


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
