"""The per-sensor gate of the streaming job: parse, validate, drop late and repeated readings.

The Spark job groups each micro-batch's raw lines by sensor and hands every group, with
what it remembers of that sensor, to :func:`gate_lines`. Everything here is plain Python
so that it is tested without Spark; :mod:`airpath.pipeline.processor` only moves
:class:`SensorMemory` in and out of the RocksDB state store.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from airpath.air.parsers import parse_jsonl
from airpath.air.readings import Rejected, validate
from airpath.air.rules import DEFAULT_MAX_AGE, AreaLike, RecentKeys, RejectReason, time_ms

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

    keys: dict[str, list[int]] = field(default_factory=dict)
    n_in: int = 0
    n_valid: int = 0
    n_rejected: int = 0
    last_time_ms: int = -1
    last_kind: str = ""
    last_lat: float = math.nan
    last_lon: float = math.nan
    last_value_ugm3: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"), allow_nan=True)

    @classmethod
    def from_json(cls, text: str | None) -> SensorMemory:
        return cls() if not text else cls(**json.loads(text))


@dataclass(frozen=True)
class GateResult:
    """Accepted rows (:data:`VALID_COLUMNS`), rejected rows (:data:`REJECTED_COLUMNS`)."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    memory: SensorMemory


def gate_lines(
    sensor_id: str | None,
    lines: Sequence[str],
    memory: SensorMemory,
    *,
    now_ms: int,
    watermark_ms: int | None,
    area: AreaLike | None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    clock: Clock = "wall",
) -> GateResult:
    """Judge one sensor's raw lines of one micro-batch; every line ends in one output.

    ``sensor_id`` is the group key (``None`` for lines with no readable sensor id, which
    then fail validation). ``watermark_ms`` is ``None`` before the first watermark.
    """
    blank = [line for line in lines if not line.strip()]
    readings, rejected = parse_jsonl(lines, source="stream")
    # parse_jsonl skips blank lines; here every input row must come out, so they are
    # rejected like any other line that holds no reading.
    rejected += [Rejected(RejectReason.MALFORMED, "blank line", line, "stream") for line in blank]
    if clock == "event":
        newest = max((time_ms(r.time) for r in readings), default=now_ms)
        now = _from_ms(newest)
    else:
        now = _from_ms(now_ms)
    seen = RecentKeys(max_size=1 << 30)
    if sensor_id is not None:
        for pollutant, times in memory.keys.items():
            for t in times:
                seen.add((sensor_id, t, pollutant))
    watermark = None if watermark_ms is None or watermark_ms <= 0 else _from_ms(watermark_ms)
    result = validate(
        readings,
        now=now,
        area=area,
        max_age=max_age,
        seen=seen,
        watermark=watermark,
        source="stream",
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
        },
        columns=list(REJECTED_COLUMNS),
    )
    horizon_ms = time_ms(now - max_age)
    if watermark is not None:
        horizon_ms = max(horizon_ms, time_ms(watermark))
    return GateResult(valid, bad, _remember(memory, valid, len(lines), len(bad), horizon_ms))


def _remember(
    memory: SensorMemory, valid: pd.DataFrame, n_in: int, n_rejected: int, horizon_ms: int
) -> SensorMemory:
    """The memory after this batch: keys older than ``horizon_ms`` are forgotten, since
    a reading that old is rejected as stale or late before duplicates are looked for."""
    keys = {p: {t for t in ts if t >= horizon_ms} for p, ts in memory.keys.items()}
    out = SensorMemory(
        n_in=memory.n_in + n_in,
        n_valid=memory.n_valid + len(valid),
        n_rejected=memory.n_rejected + n_rejected,
        last_time_ms=memory.last_time_ms,
        last_kind=memory.last_kind,
        last_lat=memory.last_lat,
        last_lon=memory.last_lon,
        last_value_ugm3=dict(memory.last_value_ugm3),
    )
    last_of: dict[str, int] = {}  # pollutant -> time of its newest reading so far
    rows = zip(
        valid["pollutant"].tolist(),
        valid["time_ms"].tolist(),
        valid["value_ugm3"].tolist(),
        valid["sensor_kind"].tolist(),
        valid["lat"].tolist(),
        valid["lon"].tolist(),
        strict=True,
    )
    for p, t, v, kind, lat, lon in rows:
        if t >= horizon_ms:
            keys.setdefault(p, set()).add(t)
        if t >= last_of.get(p, -1):
            last_of[p] = t
            if t >= out.last_time_ms - 60_000:
                out.last_value_ugm3[p] = v
        if t >= out.last_time_ms:
            out.last_time_ms, out.last_kind, out.last_lat, out.last_lon = t, kind, lat, lon
    out.keys = {p: sorted(ts) for p, ts in sorted(keys.items()) if ts}
    return out


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
