"""The per-sensor gate: every line comes out once, late and repeated readings are caught."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airpath.air.gate import gate_lines
from airpath.air.rules import time_ms
from airpath.air.sensormemory import SensorMemory, pack_memories, unpack_memories

NOW = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
NOW_MS = time_ms(NOW)
AREA = (24.93, 60.16, 24.96, 60.18)


def line(minute: int = 0, pollutant: str = "no2", **kw: Any) -> str:
    t = NOW - dt.timedelta(minutes=60 - minute)
    record = {
        "sensor_id": "lc-1",
        "sensor_kind": "low_cost",
        "lat": 60.17,
        "lon": 24.94,
        "time": t.isoformat().replace("+00:00", "Z"),
        "pollutant": pollutant,
        "value": 21.5,
        "unit": "ug/m3",
    }
    record.update(kw)
    return json.dumps(record)


def gate(lines: list[str], memories: dict[str, SensorMemory] | None = None, **kw: Any) -> Any:
    args: dict[str, Any] = {"now_ms": NOW_MS, "watermark_ms": None, "area": AREA}
    args.update(kw)
    return gate_lines(lines, memories or {}, **args)


def test_valid_and_bad_lines_each_come_out_once() -> None:
    lines = [line(1), "{not json", "", line(2, pollutant="co"), line(3, lat=61.5), line(4)]
    r = gate(lines)
    assert len(r.valid) + len(r.rejected) == len(lines)
    assert list(r.valid["time_ms"]) == [time_ms(NOW) - 59 * 60_000, time_ms(NOW) - 56 * 60_000]
    assert sorted(r.rejected["reason"]) == [
        "malformed",
        "malformed",
        "outside_area",
        "unknown_pollutant",
    ]
    assert "{not json" in set(r.rejected["payload"])
    m = r.memories["lc-1"]
    assert m.n_in == 4  # the two lines that name no sensor are counted by the job
    assert m.n_valid == 2
    assert m.n_rejected == 2


def test_repeat_in_a_later_batch_is_a_duplicate() -> None:
    first = gate([line(1), line(2)])
    second = gate([line(2), line(3), line(2, sensor_id="lc-2")], first.memories)
    assert list(second.rejected["reason"]) == ["duplicate"]
    assert list(second.rejected["sensor_id"]) == ["lc-1"]
    assert len(second.valid) == 2  # the same time from another sensor is no repeat
    assert second.memories["lc-1"].keys["no2"].tolist() == sorted(
        time_ms(NOW) - m * 60_000 for m in (59, 58, 57)
    )


def test_behind_the_watermark_is_late_and_keys_are_forgotten() -> None:
    first = gate([line(1), line(30)])
    watermark = NOW_MS - 40 * 60_000  # between minute 1 (59 min ago) and minute 30
    second = gate([line(1), line(10), line(30)], first.memories, watermark_ms=watermark)
    assert sorted(second.rejected["reason"]) == ["duplicate", "late", "late"]
    assert second.memories["lc-1"].keys["no2"].tolist() == [NOW_MS - 30 * 60_000]


def test_event_clock_never_calls_data_from_the_future() -> None:
    future = line(60 + 120)  # two hours after NOW
    assert list(gate([future]).rejected["reason"]) == ["future_timestamp"]
    assert len(gate([future], clock="event").valid) == 1


def test_latest_reading_is_remembered() -> None:
    r = gate([line(5, value=10.0), line(9, value=30.0), line(9, pollutant="pm25", value=7.0)])
    back = unpack_memories(*pack_memories(r.memories))
    assert back.keys() == r.memories.keys()
    assert all(back[k].same_as(m) for k, m in r.memories.items())
    m = back["lc-1"]
    assert m.last_time_ms == NOW_MS - 51 * 60_000
    assert m.last_value_ugm3 == {"no2": 30.0, "pm25": 7.0}
    assert (m.last_lat, m.last_lon, m.last_kind) == (60.17, 24.94, "low_cost")


_lines = st.one_of(
    st.integers(0, 59).map(line),
    st.integers(0, 59).map(lambda m: line(m, pollutant="pm10")),
    st.text(max_size=20),
    st.just(line(3, value=float("nan"))),
)


@given(st.lists(st.lists(_lines, max_size=15), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None)
def test_rows_in_equal_valid_plus_rejected_and_no_key_twice(batches: list[list[str]]) -> None:
    memories: dict[str, SensorMemory] = {}
    accepted: list[tuple[str, int]] = []
    for lines in batches:
        r = gate(lines, memories)
        assert len(r.valid) + len(r.rejected) == len(lines)
        accepted += list(zip(r.valid["pollutant"], r.valid["time_ms"], strict=True))
        memories = r.memories
    assert len(accepted) == len(set(accepted))
    named = sum(1 for b in batches for x in b if '"sensor_id": "lc-1"' in x)
    assert memories.get("lc-1", SensorMemory()).n_in == named


def test_quiet_sensors_are_forgotten() -> None:
    first = gate([line(1), line(2, sensor_id="lc-2")])
    later = gate([line(57, sensor_id="lc-2")], first.memories, watermark_ms=NOW_MS - 5 * 60_000,
                 forget_after_ms=50 * 60_000)  # fmt: skip
    assert set(later.memories) == {"lc-2"}
