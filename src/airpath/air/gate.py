"""The per-sensor gate of the streaming job: parse, validate, drop late and repeated readings.

The Spark job groups each micro-batch's raw lines by sensor bucket and hands every group,
with what it remembers of those sensors, to :func:`gate_lines`. Everything here is plain
Python so that it is tested without Spark; :mod:`airpath.pipeline.processor` only moves
the :class:`~airpath.air.sensormemory.SensorMemory` of each sensor in and out of the
RocksDB state store.

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
ages are measured from the newest reading of the group in the batch and nothing can be
"in the future".

Two paths, one result. Judging a line as a record (:func:`airpath.air.readings.validate`
after :func:`json.loads`) costs some 25 µs of Python, too much for the job's throughput,
so :func:`gate_lines` splits a batch (:func:`_gate_lines_fast`):

* lines in the typical shape (a flat object with the schema's fields in order, as every
  source of the job writes them; :mod:`airpath.air.fastgate`) are read at once by Arrow
  and checked as NumPy columns against every rule;
* every other line, and every typical line that breaks a rule, goes through the record
  path one line at a time, which names the reason and writes the message — rejections
  are rare, and only the record path has to know how to word them;
* duplicates are decided for all passing rows together: as the record path takes lines
  in order, a passing row is accepted exactly when its key is not remembered and no
  earlier passing row of the batch has it; a repeat is worded by the record path's
  :func:`~airpath.air.rules.message_for`;
* the memories are updated from the valid columns
  (:func:`~airpath.air.sensormemory._remember_columns`).

:func:`_gate_lines_slow` is the record path alone: the reference, kept to test the fast
path against (exact equality of every row, message and memory) and used for small batches,
where the fast path's fixed costs do not pay off.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from airpath.air.fastgate import (
    KINDS,
    POLLUTANTS,
    UNITS,
    TypicalRows,
    check_typical,
    parse_typical,
)
from airpath.air.parsers import parse_jsonl
from airpath.air.readings import Rejected, ValidReading, reading_to_dict, validate
from airpath.air.rules import (
    DEFAULT_MAX_AGE,
    AreaLike,
    RejectReason,
    as_area,
    check_now,
    message_for,
    time_ms,
)
from airpath.air.schema import Reading
from airpath.air.sensormemory import (
    SensorMemory,
    _remember,
    _remember_columns,
    _Remembered,
)
from airpath.air.units import REFERENCE_PRESSURE_HPA, REFERENCE_TEMPERATURE_C

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
# Below this many lines the columnar path's fixed costs (Arrow, NumPy and pandas calls,
# some 1.5 ms per batch against 1 ms for the record path) outweigh what it saves per line.
FAST_PATH_MIN_LINES = 64


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

    The result is exactly :func:`_gate_lines_slow`'s; a batch of more than a few lines goes
    through :func:`_gate_lines_fast` (see the module docstring).
    """
    judge = _gate_lines_fast if len(lines) >= FAST_PATH_MIN_LINES else _gate_lines_slow
    return judge(
        lines,
        memories,
        now_ms=now_ms,
        watermark_ms=watermark_ms,
        area=area,
        max_age=max_age,
        clock=clock,
        forget_after_ms=forget_after_ms,
    )


def _gate_lines_fast(
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
    """:func:`gate_lines` with typical lines read and checked as columns, the rest line by
    line; duplicates are resolved over both at once, in line order."""
    lines = list(lines)
    typical = parse_typical(lines)
    records: list[tuple[int, Reading, str]] = []
    rejected: list[tuple[int, Rejected]] = []  # lines that hold no reading, in order
    rest = np.ones(len(lines), dtype=np.bool_)
    rest[typical.index] = False
    for i in np.flatnonzero(rest).tolist():
        parsed = _parse_line(lines[i])
        if isinstance(parsed, Rejected):
            rejected.append((i, parsed))
        else:
            records.append((i, *parsed))
    if clock == "event":
        times = [time_ms(r.time) for _, r, _ in records]
        if len(typical):
            times.append(int(typical.time_ms.max()))
        now = _from_ms(max(times, default=now_ms))
    else:
        now = _from_ms(now_ms)
    watermark = None if watermark_ms is None or watermark_ms <= 0 else _from_ms(watermark_ms)
    checked_now_ms = check_now(now, max_age)  # raises as validate would, first
    box = as_area(area)
    passed, value_ugm3 = check_typical(
        typical,
        now_ms=checked_now_ms,
        max_age=max_age,
        area=box,
        watermark_ms=None if watermark is None else time_ms(watermark),
        temperature_c=REFERENCE_TEMPERATURE_C,
        pressure_hpa=REFERENCE_PRESSURE_HPA,
    )
    if not passed.all():  # rejected for some reason: the record path names it
        failed = np.flatnonzero(~passed)
        records.extend(
            (i, reading, lines[i].rstrip("\r\n"))
            for i, reading in zip(
                typical.index[failed].tolist(), typical.readings(failed), strict=True
            )
        )
        typical, value_ugm3 = typical.take(passed), value_ugm3[passed]
    # Each record is judged alone (its duplicates are looked for below); rows are put
    # back in line order at the end.
    judged: list[tuple[int, Rejected, str | None]] = []  # with the sensor, when known
    passing: list[tuple[int, ValidReading, str]] = []
    for i, reading, text in records:
        one = validate(
            [reading],
            now=now,
            area=box,
            max_age=max_age,
            watermark=watermark,
            source="stream",
            typed=True,
            payloads=[text],
        )
        if one.valid:
            passing.append((i, one.valid[0], text))
        else:
            judged.append((i, one.rejected[0], None))
    valid, repeats = _first_unseen(typical, value_ugm3, passing, memories)
    lines_again = typical.index[repeats[0]].tolist()
    sensors_again = [typical.sensor_names[k] for k in typical.sensor[repeats[0]].tolist()]
    for i, record, sensor in zip(
        lines_again, typical.records(repeats[0]), sensors_again, strict=True
    ):
        judged.append((i, _duplicate(record, lines[i].rstrip("\r\n")), sensor))
    judged.extend(
        (i, _duplicate(reading_to_dict(v.reading), text), None) for i, v, text in repeats[1]
    )
    judged.sort(key=lambda item: item[0])
    bad = _rejected_frame_fast(
        [r for _, r in rejected] + [r for _, r, _ in judged],
        [None for _ in rejected] + [sensor for _, _, sensor in judged],
    )
    out = _remember_columns(memories, valid, bad, _horizon_ms(now, max_age, watermark))
    return _result(out, valid, bad, watermark_ms, forget_after_ms)


def _gate_lines_slow(
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
    """:func:`gate_lines` on the record path alone, line by line: the reference the fast
    path is tested against."""
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
    valid = _valid_frame(result.valid)
    bad = _rejected_frame(rejected)
    horizon_ms = _horizon_ms(now, max_age, watermark)
    out = _remember(memories, valid, bad, horizon_ms)
    return _result(out, valid, bad, watermark_ms, forget_after_ms)


def _horizon_ms(now: dt.datetime, max_age: dt.timedelta, watermark: dt.datetime | None) -> int:
    """Keys older than this are forgotten: a reading that old is stale or late."""
    horizon_ms = time_ms(now - max_age)
    if watermark is not None:
        horizon_ms = max(horizon_ms, time_ms(watermark))
    return horizon_ms


def _result(
    out: dict[str, SensorMemory],
    valid: pd.DataFrame,
    bad: pd.DataFrame,
    watermark_ms: int | None,
    forget_after_ms: int | None,
) -> GateResult:
    if forget_after_ms is not None and watermark_ms:
        out = {k: m for k, m in out.items() if m.last_time_ms >= watermark_ms - forget_after_ms}
    return GateResult(valid, bad, out)


def _valid_frame(valid: Sequence[ValidReading]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor_id": [v.reading.sensor_id for v in valid],
            "sensor_kind": [v.reading.sensor_kind.value for v in valid],
            "lat": [v.reading.lat for v in valid],
            "lon": [v.reading.lon for v in valid],
            "time_ms": [time_ms(v.reading.time) for v in valid],
            "pollutant": [v.reading.pollutant.value for v in valid],
            "value": [v.reading.value for v in valid],
            "unit": [v.reading.unit.value for v in valid],
            "value_ugm3": [v.value_ugm3 for v in valid],
            "speed_mps": [_nan(v.reading.speed_mps) for v in valid],
            "heading_deg": [_nan(v.reading.heading_deg) for v in valid],
        },
        columns=list(VALID_COLUMNS),
    )


def _rejected_frame(rejected: Sequence[Rejected]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "reason": [r.reason.value for r in rejected],
            "message": [r.message for r in rejected],
            "payload": [r.payload for r in rejected],
            "sensor_id": [_sensor_of(r.payload) for r in rejected],
        },
        columns=[*REJECTED_COLUMNS, "sensor_id"],
    )


def _rejected_frame_fast(
    rejected: Sequence[Rejected], sensors: Sequence[str | None]
) -> pd.DataFrame:
    """:func:`_rejected_frame`, built as :func:`_frame` builds frames; ``sensors`` are the
    rows' sensor ids where already known (None: read from the payload)."""
    if not rejected:
        return _empty_frame([*REJECTED_COLUMNS, "sensor_id"])
    return _frame(
        {
            "reason": _objects([r.reason.value for r in rejected]),
            "message": _objects([r.message for r in rejected]),
            "payload": _objects([r.payload for r in rejected]),
            "sensor_id": _objects(
                [
                    _sensor_of(r.payload) if sensor is None else sensor
                    for r, sensor in zip(rejected, sensors, strict=True)
                ]
            ),
        }
    )


def _frame(columns: dict[str, npt.NDArray[Any]]) -> pd.DataFrame:
    """A frame of these new arrays, named and ordered as given, not copied: some ten times
    cheaper than pandas' default, which copies and consolidates. Not for empty columns,
    which pandas types differently when they come as lists."""
    return pd.DataFrame(columns, copy=False)


def _empty_frame(names: Sequence[str]) -> pd.DataFrame:
    """What :func:`_valid_frame` and :func:`_rejected_frame` make of no rows: pandas types
    empty lists as float64."""
    return _frame({name: np.zeros(0, dtype=np.float64) for name in names})


def _objects(items: list[Any]) -> npt.NDArray[np.object_]:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _duplicate(record: Mapping[str, object], text: str) -> Rejected:
    """The rejection :func:`validate` gives a repeated reading (``record`` is
    :func:`reading_to_dict` of it)."""
    reason = RejectReason.DUPLICATE
    return Rejected(reason, message_for(reason, record), text, "stream")


_KIND_VALUES = np.array([k.value for k in KINDS], dtype=object)
_POLLUTANT_VALUES = np.array([p.value for p in POLLUTANTS], dtype=object)
_UNIT_VALUES = np.array([u.value for u in UNITS], dtype=object)


def _first_unseen(
    typical: TypicalRows,
    value_ugm3: npt.NDArray[np.float64],
    passing: list[tuple[int, ValidReading, str]],
    memories: Mapping[str, SensorMemory],
) -> tuple[pd.DataFrame, tuple[npt.NDArray[np.int64], list[tuple[int, ValidReading, str]]]]:
    """The valid frame of the rows that pass every rule (typical rows and ``passing``
    records), without repeats; and the repeats (positions of typical rows, records).

    :func:`validate` takes lines in order and rejects a passing reading as a duplicate
    when its key is remembered or an earlier reading with that key was accepted. So a
    passing row is accepted exactly when its key is not remembered and it is the first
    passing row with that key; that is decided here for all rows at once.
    """
    names = list(typical.sensor_names)
    sensor, pollutant, times = typical.sensor, typical.pollutant, typical.time_ms
    index = typical.index
    if passing:
        code_of = {name: k for k, name in enumerate(names)}
        extra = [v.reading for _, v, _ in passing]
        codes = [code_of.setdefault(r.sensor_id, len(code_of)) for r in extra]
        names.extend(list(code_of)[len(names) :])
        sensor = np.concatenate([sensor, np.asarray(codes, dtype=np.int64)])
        pollutant = np.concatenate(
            [pollutant, np.asarray([POLLUTANTS.index(r.pollutant) for r in extra], np.int64)]
        )
        times = np.concatenate([times, np.asarray([time_ms(r.time) for r in extra], np.int64)])
        index = np.concatenate([index, np.asarray([i for i, _, _ in passing], np.int64)])
    accept = _accepted(sensor, pollutant, times, index, names, memories)
    n = len(typical)
    repeats = (
        np.flatnonzero(~accept[:n]),
        [item for item, ok in zip(passing, accept[n:].tolist(), strict=True) if not ok],
    )
    if not accept.any():
        return _empty_frame(VALID_COLUMNS), repeats
    fast = typical.take(accept[:n])
    columns: dict[str, Any] = {
        "sensor_id": _objects(fast.sensor_names)[fast.sensor],
        "sensor_kind": _KIND_VALUES[fast.kind],
        "lat": fast.lat,
        "lon": fast.lon,
        "time_ms": fast.time_ms,
        "pollutant": _POLLUTANT_VALUES[fast.pollutant],
        "value": fast.value,
        "unit": _UNIT_VALUES[fast.unit],
        "value_ugm3": value_ugm3[accept[:n]],
        "speed_mps": fast.speed_mps,
        "heading_deg": fast.heading_deg,
    }
    kept = [v for v, ok in zip(passing, accept[n:].tolist(), strict=True) if ok]
    if kept:
        more = _valid_frame([v for _, v, _ in kept])
        at = np.concatenate([fast.index, np.asarray([i for i, _, _ in kept], np.int64)])
        order = np.argsort(at, kind="stable")
        columns = {
            name: np.concatenate([np.asarray(columns[name]), more[name].to_numpy()])[order]
            for name in VALID_COLUMNS
        }
    return _frame(columns), repeats


def _accepted(
    sensor: npt.NDArray[np.int64],
    pollutant: npt.NDArray[np.int64],
    times: npt.NDArray[np.int64],
    index: npt.NDArray[np.int64],
    names: list[str],
    memories: Mapping[str, SensorMemory],
) -> npt.NDArray[np.bool_]:
    """Per passing row, whether its key is not remembered and no earlier row has it."""
    n_p = len(POLLUTANTS)
    group = sensor * n_p + pollutant
    order = np.lexsort((index, times, group))
    g, t = group[order], times[order]
    new_group = np.ones(len(g), dtype=np.bool_)
    new_group[1:] = g[1:] != g[:-1]
    first = new_group.copy()
    first[1:] |= t[1:] != t[:-1]
    seen = np.zeros(len(g), dtype=np.bool_)
    if memories and len(g):
        held_by = [memories.get(name) for name in names]
        starts = np.flatnonzero(new_group)
        ends = np.append(starts[1:], len(g))
        groups = zip(
            starts.tolist(),
            ends.tolist(),
            g[starts].tolist(),
            t[starts].tolist(),  # the group's oldest time
            t[ends - 1].tolist(),  # and newest
            strict=True,
        )
        for a, b, k, oldest, newest in groups:
            m = held_by[k // n_p]
            held = None if m is None else m.keys.get(_POLLUTANT_VALUES[k % n_p])
            # Held keys are sorted; usually all older than the batch.
            if held is None or not len(held) or held[-1] < oldest or held[0] > newest:
                continue
            at = held.searchsorted(t[a:b])
            seen[a:b] = (at < len(held)) & (held[np.minimum(at, len(held) - 1)] == t[a:b])
    out = np.empty(len(g), dtype=np.bool_)
    out[order] = first & ~seen
    return out


def _parse(lines: Sequence[str]) -> tuple[list[Reading], list[str], list[Rejected]]:
    """Readings with their lines, and a rejection for every line that holds none (bad
    JSON, not an object, a missing field or a wrong type, or blank: every input row must
    come out of the gate)."""
    readings: list[Reading] = []
    texts: list[str] = []
    rejected: list[Rejected] = []
    for line in lines:
        parsed = _parse_line(line)
        if isinstance(parsed, Rejected):
            rejected.append(parsed)
        else:
            readings.append(parsed[0])
            texts.append(parsed[1])
    return readings, texts, rejected


def _parse_line(line: str) -> tuple[Reading, str] | Rejected:
    """One line's reading with its text (the payload of a later rejection), or why it holds
    none."""
    if not line.strip():
        return Rejected(RejectReason.MALFORMED, "blank line", line, "stream")
    got, bad = parse_jsonl([line], source="stream")
    # A line that is not blank is either a reading or a rejection, never skipped.
    return (got[0], line.rstrip("\r\n")) if got else bad[0]


def _sensor_of(payload: str) -> str | None:
    """The sensor id a rejected line names, if it is a JSON object with a text one."""
    try:
        record = json.loads(payload)
    except ValueError:
        return None
    sensor = record.get("sensor_id") if isinstance(record, dict) else None
    return sensor if isinstance(sensor, str) and sensor else None


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
