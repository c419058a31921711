"""The gate's columnar fast path gives exactly what the line-by-line record path gives.

Batches mix plainly typical lines (the shapes the simulator, the benchmark fleet, the
Parquet source and Spark's ``to_json`` write) with every kind of odd or bad line, repeats
within the batch and of remembered keys; the fast and the slow gate must agree on every
valid row (values to the bit, dtypes, order), every rejection (reason, message, payload,
order) and every memory (fields, key arrays, dict order).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airpath.air.fastgate import _NUM, TYPICAL_LINE, parse_typical
from airpath.air.gate import (
    FAST_PATH_MIN_LINES,
    VALID_COLUMNS,
    GateResult,
    _gate_lines_fast,
    _gate_lines_slow,
    gate_lines,
)
from airpath.air.readings import coerce_reading, reading_to_dict
from airpath.air.rules import Area, time_ms
from airpath.air.sensormemory import SensorMemory, _remember, _remember_columns, pack_memories

NOW = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
NOW_MS = time_ms(NOW)
AREA = (2.05, 41.32, 2.23, 41.47)  # Barcelona
SENSORS = ["ref-1", "low-2", "mob-3", "low-4", "mob-5", "x"]
MINUTE = 60_000

# ---------------------------------------------------------------- comparing results


def assert_same(fast: GateResult, slow: GateResult) -> None:
    pd.testing.assert_frame_equal(fast.valid, slow.valid, check_exact=True)
    for name in ("lat", "lon", "value", "value_ugm3", "speed_mps", "heading_deg"):
        if len(slow.valid):  # -0.0 == 0.0 for assert_frame_equal; not for us
            a = fast.valid[name].to_numpy(dtype=np.float64)
            b = slow.valid[name].to_numpy(dtype=np.float64)
            assert np.array_equal(np.signbit(a), np.signbit(b)), name
    pd.testing.assert_frame_equal(fast.rejected, slow.rejected, check_exact=True)
    assert list(fast.memories) == list(slow.memories)
    for k, m in slow.memories.items():
        f = fast.memories[k]
        assert f.same_as(m), k
        assert list(f.last_value_ugm3) == list(m.last_value_ugm3)
        assert list(f.keys) == list(m.keys)
        assert all(f.keys[p].dtype == m.keys[p].dtype for p in m.keys)
    assert pack_memories(fast.memories) == pack_memories(slow.memories)


def both(lines: list[str], memories: dict[str, SensorMemory], **kw: Any) -> GateResult:
    """The fast gate's result, after checking it equals the slow gate's and that neither
    touched ``memories``."""
    before = pack_memories(memories)
    slow = _gate_lines_slow(lines, memories, **kw)
    fast = _gate_lines_fast(lines, memories, **kw)
    assert pack_memories(memories) == before
    assert_same(fast, slow)
    assert len(fast.valid) + len(fast.rejected) == len(lines)
    return fast


# ---------------------------------------------------------------- lines


def time_text(offset_ms: int, style: str) -> str:
    t = NOW + dt.timedelta(milliseconds=offset_ms)
    if style == "z":  # sensors/clock.format_time, bench_stream.Fleet
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if style == "z_s":
        return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if style == "utc":  # Parquet payloads: datetime.isoformat()
        return t.isoformat()
    if style == "us":
        return (t + dt.timedelta(microseconds=417)).isoformat().replace("+00:00", "Z")
    if style == "madrid":
        return t.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    if style == "space":
        return t.isoformat(sep=" ")
    if style == "naive":
        return t.replace(tzinfo=None).isoformat()
    if style == "date":
        return t.date().isoformat()
    return {"garbage": "yesterday", "empty": "", "feb30": "2026-02-30T00:00:00Z"}[style]


# Where the rules' time limits fall (minutes from NOW) for the options below: watermarks,
# maximum ages from each "now", the clock-skew tolerance.
EDGES_MIN = [-24 * 60 - 30, -24 * 60, -105, -75, -70, -25, -20, 5]
TIME_STYLES = ["z", "z", "z", "z_s", "utc", "us", "madrid", "space", "naive", "date", "garbage"]
TIME_STYLES += ["empty", "feb30"]

numbers = st.one_of(
    st.floats(-100, 200).map(lambda x: json.dumps(round(x, 3))),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.integers(-10, 3000).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,18})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "-0.0", "0", "1E1", "1e400", "2.5e-3"]),
    st.sampled_from(["true", "null", '"41.4"', "{}", "[]"]),
)


@st.composite
def records(draw: st.DrawFn, clean: bool = False) -> list[tuple[str, str]]:
    """A record as (key, JSON text) pairs: mostly valid, sometimes anything but (never when
    ``clean``: then in one of the typical shapes, though possibly rejected for its values)."""
    sensor = draw(st.sampled_from(SENSORS))
    kind = {"r": "reference", "l": "low_cost", "m": "mobile", "x": "low_cost"}[sensor[0]]
    if not clean and draw(st.integers(0, 9)) == 0:
        kind = draw(st.sampled_from(["Low-cost", "lowcost", " MOBILE ", "bus", ""]))
    pollutant = draw(st.sampled_from(["no2", "pm10", "pm25", "o3"]))
    if not clean and draw(st.integers(0, 9)) == 0:
        pollutant = draw(st.sampled_from(["NO2", "PM2.5", "pm-10", "co", ""]))
    unit = "ug/m3"
    if draw(st.integers(0, 4)) == 0:
        unit = draw(st.sampled_from(["µg/m³", "ppb", "mg/m3", "UG/M3", " ppb", "furlongs"]))
    minute = draw(st.one_of(st.integers(-90, 8), st.sampled_from(EDGES_MIN)))
    offset = minute * MINUTE + draw(st.sampled_from([0, 0, 0, 1, 999, -1]))
    if draw(st.integers(0, 19)) == 0:
        offset = draw(st.integers(-3 * 24 * 60 * MINUTE, 3 * 60 * MINUTE))
    style = draw(st.sampled_from(TIME_STYLES[:8] if clean else TIME_STYLES))
    lat, lon = draw(st.floats(41.3, 41.49)), draw(st.floats(2.03, 2.25))
    out = [
        ("sensor_id", json.dumps(sensor)),
        ("sensor_kind", json.dumps(kind)),
        ("lat", json.dumps(round(lat, 7))),
        ("lon", json.dumps(round(lon, 7))),
        ("time", json.dumps(time_text(offset, style))),
        ("pollutant", json.dumps(pollutant)),
        ("value", json.dumps(round(draw(st.floats(-6, 300)), 2))),
        ("unit", json.dumps(unit, ensure_ascii=draw(st.booleans()))),
    ]
    motion = draw(st.sampled_from(["none", "null", "ok", "ok", "odd", "half"]))
    if motion != "none":
        speed = draw(
            st.sampled_from(["4.2", "0", "20.0", "20.5", "-1", "NaN"][: 5 if clean else 6])
        )
        heading = draw(
            st.sampled_from(["90.0", "0", "359.9", "360", "-0.0", "NaN"][: 4 if clean else 6])
        )
        if motion == "null":
            speed = heading = "null"
        elif motion == "odd" and not clean:
            speed, heading = draw(numbers), draw(numbers)
        out += [("speed_mps", speed), ("heading_deg", heading)]
        if motion == "half" and not clean:
            del out[draw(st.sampled_from([-1, -2]))]
    for _ in range(draw(st.integers(0, 2)) if not clean and draw(st.integers(0, 3)) == 0 else 0):
        change = draw(st.sampled_from(["number", "drop", "extra", "twice", "swap", "type"]))
        i = draw(st.integers(0, len(out) - 1))
        key = out[i][0]
        if change == "number":
            out[i] = (key, draw(numbers))
        elif change == "drop":
            del out[i]
        elif change == "extra":
            out.insert(i, ("note", json.dumps(draw(st.text(max_size=5)))))
        elif change == "twice":
            out.insert(draw(st.integers(0, len(out))), (key, out[i][1]))
        elif change == "swap":
            j = draw(st.integers(0, len(out) - 1))
            out[i], out[j] = out[j], out[i]
        else:
            out[i] = (key, draw(st.sampled_from(["5", "true", "null", '""', "[1]", '"a\\"b"'])))
    return out


def render(record: list[tuple[str, str]], comma: str = ", ", colon: str = ": ") -> str:
    return "{" + comma.join(f'"{k}"{colon}{v}' for k, v in record) + "}"


@st.composite
def lines_of(draw: st.DrawFn) -> str:
    clean = draw(st.integers(0, 2)) > 0
    record = draw(records(clean))
    separators = [(", ", ": ")] * 4 + [(",", ":"), (",", ": ")]
    if not clean:
        separators += [(" , ", " : "), (",\t", ":")]
    comma, colon = draw(st.sampled_from(separators))
    line = render(record, comma, colon)
    wrap = draw(st.integers(0, 14)) if not clean else -1
    if wrap == 0:
        line = " " + line
    elif wrap == 1:
        line += "\r\n"
    elif wrap == 2:
        line += "\n"
    elif wrap == 3:
        line = line.replace('"x"', '"\\u0078"')  # an escaped sensor id
    elif wrap == 4:
        line = line.replace('"x"', '"x\\ud800"')  # a lone surrogate, escaped
    elif wrap == 5:
        line = line.replace('"x"', '"x\ud800"')  # and raw: Python reads it, UTF-8 cannot
    elif wrap == 6:
        line = line.replace('"x"', '"x\x01"')  # a control character in a string
    elif wrap == 7:
        line = line.replace('"x"', '"ü"')
    return line


odd_lines = st.one_of(
    st.sampled_from(["", "   ", "\n", "{oops", "[1, 2]", "42", "null", '"x"', "{}", "{} {}"]),
    st.text(max_size=20),
    st.tuples(records(), records()).map(lambda r: render(r[0]) + "\n" + render(r[1])),
    st.tuples(records(), records()).map(lambda r: render(r[0]) + " " + render(r[1])),
)


@st.composite
def batches(draw: st.DrawFn) -> list[str]:
    n = draw(st.integers(0, 40))
    lines = draw(
        st.lists(st.one_of(lines_of(), lines_of(), lines_of(), odd_lines), min_size=n, max_size=n)
    )
    for at, source in draw(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=8)):
        if lines:  # an exact repeat, e.g. an MQTT redelivery
            lines.insert(at % (len(lines) + 1), lines[source % len(lines)])
    return lines


settings_kw: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
options = st.fixed_dictionaries(
    {
        "now_ms": st.sampled_from([NOW_MS, NOW_MS + 1, NOW_MS - 30 * MINUTE]),
        "watermark_ms": st.sampled_from([None, 0, NOW_MS - 70 * MINUTE, NOW_MS - 20 * MINUTE]),
        "area": st.sampled_from([None, AREA, Area(*AREA, margin_m=0.0)]),
        "max_age": st.sampled_from([dt.timedelta(hours=24), dt.timedelta(minutes=75)]),
        "clock": st.sampled_from(["wall", "wall", "event"]),
        "forget_after_ms": st.sampled_from([None, 30 * MINUTE]),
    }
)


# ---------------------------------------------------------------- the properties


@given(history=batches(), lines=batches(), kw=options, kw_history=options)
@settings(max_examples=400, **settings_kw)
def test_fast_gate_equals_the_record_gate(
    history: list[str], lines: list[str], kw: dict[str, Any], kw_history: dict[str, Any]
) -> None:
    memories = both(history, {}, **kw_history).memories
    both(lines, memories, **kw)
    both(lines, {}, **kw)


@given(lines=st.lists(lines_of(), min_size=1, max_size=40), kw=options)
@settings(max_examples=150, **settings_kw)
def test_a_batch_gated_twice_is_all_duplicates_or_late(
    lines: list[str], kw: dict[str, Any]
) -> None:
    first = both(lines, {}, **kw)
    second = both(lines, first.memories, **kw)
    assert len(second.valid) == 0


def edge_lines() -> list[str]:
    """Typical lines on both sides of every limit the rules draw, to the millisecond and to
    the last bit of a double."""
    box = Area(*AREA)
    base: dict[str, Any] = {
        "sensor_id": "mob-1",
        "sensor_kind": "mobile",
        "lat": 41.4,
        "lon": 2.1,
        "time": "",
        "pollutant": "no2",
        "value": 10.0,
        "unit": "ug/m3",
    }

    def stamp(ms: int) -> str:
        t = NOW + dt.timedelta(milliseconds=ms)
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def around(x: float) -> list[float]:
        return [float(np.nextafter(x, -np.inf)), x, float(np.nextafter(x, np.inf))]

    out: list[str] = []
    for k, minute in enumerate(EDGES_MIN):
        for ms in (-1, 0, 1):
            out.append(json.dumps(base | {"time": stamp(minute * MINUTE + ms), "value": k + ms}))
    t = stamp(-MINUTE)
    for lat in [*around(box.lat_min_deg), *around(box.lat_max_deg), *around(90.0)]:
        out.append(json.dumps(base | {"time": t, "lat": lat}))
    for lon in [*around(box.lon_min_deg), *around(box.lon_max_deg)]:
        out.append(json.dumps(base | {"time": t, "lon": lon}))
    for speed in [*around(0.0), *around(20.0)]:
        out.append(json.dumps(base | {"time": t, "speed_mps": speed, "heading_deg": None}))
    for heading in [*around(0.0), *around(360.0)]:
        out.append(json.dumps(base | {"time": t, "heading_deg": heading}))
    factor = 46.0055 / (8.314462618 * 293.15 / 101325.0 * 1000.0)  # ppb of NO2
    for value, unit in [(-5.0, "ug/m3"), (2000.0, "ug/m3"), (2.0, "mg/m3"), (-5.0 / factor, "ppb"),
                        (2000.0 / factor, "ppb")]:  # fmt: skip
        for v in around(value):
            out.append(json.dumps(base | {"time": t, "value": v, "unit": unit}))
    return out


@pytest.mark.parametrize("now_ms", [NOW_MS, NOW_MS - 30 * MINUTE])
@pytest.mark.parametrize("watermark_ms", [None, NOW_MS - 70 * MINUTE, NOW_MS - 20 * MINUTE])
@pytest.mark.parametrize("max_age", [dt.timedelta(hours=24), dt.timedelta(minutes=75)])
@pytest.mark.parametrize("clock", ["wall", "event"])
def test_limits_are_applied_to_the_millisecond_and_the_bit(
    now_ms: int, watermark_ms: int | None, max_age: dt.timedelta, clock: str
) -> None:
    lines = edge_lines()
    kw: dict[str, Any] = {"now_ms": now_ms, "watermark_ms": watermark_ms, "area": AREA}
    result = both(lines, {}, **kw, max_age=max_age, clock=clock)
    assert len(result.rejected)
    assert len(parse_typical(lines)) == len(lines) - 4  # ±5e-324 speeds and headings


def fleet_lines(n: int, seed: int, *, odd: float = 0.0) -> list[str]:
    """Lines as the benchmark fleet and the simulator write them, a fraction odd."""
    rng = random.Random(seed)
    out: list[str] = []
    for k in range(n):
        i = rng.randrange(200)
        kind = ("reference", "low_cost", "low_cost", "mobile")[i % 4]
        t = NOW - dt.timedelta(seconds=rng.randrange(3000), milliseconds=rng.choice([0, 155]))
        rec: dict[str, Any] = {
            "sensor_id": f"{kind[:3]}-{i:05d}",
            "sensor_kind": kind,
            "lat": round(41.35 + i * 1e-4, 7),
            "lon": round(2.1 + i * 1e-4, 7),
            "time": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "pollutant": ("no2", "pm10", "pm25", "o3")[k % 4],
            "value": round(rng.lognormvariate(3, 0.5), 2),
            "unit": "ppb" if k % 4 in (0, 3) and rng.random() < 0.3 else "ug/m3",
        }
        if kind == "mobile":
            rec |= {"speed_mps": round(rng.uniform(0, 8), 1), "heading_deg": 90.0}
        elif rng.random() < 0.5:
            rec |= {"speed_mps": None, "heading_deg": None}  # sensors/output.reading_to_json
        line = json.dumps(rec)
        if rng.random() < odd:
            line = rng.choice(
                [
                    "{oops",
                    "",
                    line.replace('"no2"', '"co"'),
                    line.replace('"lat": ', '"lat": 9'),
                    line.replace('"value": ', '"value": 99'),
                    line.replace("Z", "+01:00"),
                    line.replace('"time"', '"tim"'),
                ]
            )
        out.append(line)
    return out


@pytest.mark.parametrize("odd", [0.0, 0.05, 0.5])
def test_large_batches_with_memories(odd: float) -> None:
    lines = fleet_lines(6000, seed=1, odd=odd)
    kw: dict[str, Any] = {"now_ms": NOW_MS, "area": AREA, "watermark_ms": None}
    first = both(lines[:3000], {}, **kw)
    second = both(lines[2000:], first.memories, **kw | {"watermark_ms": NOW_MS - 40 * MINUTE})
    assert second.rejected["reason"].value_counts().get("duplicate", 0) >= 300
    both(lines[::-1], second.memories, **kw | {"clock": "event"})


def test_gate_lines_takes_the_fast_path_for_all_but_small_batches() -> None:
    lines = fleet_lines(FAST_PATH_MIN_LINES, seed=2, odd=0.1)
    kw: dict[str, Any] = {"now_ms": NOW_MS, "area": AREA, "watermark_ms": None}
    assert_same(gate_lines(lines, {}, **kw), _gate_lines_fast(lines, {}, **kw))
    assert_same(gate_lines(lines[:5], {}, **kw), _gate_lines_slow(lines[:5], {}, **kw))


# ---------------------------------------------------------------- what goes fast


def test_typical_shapes_take_the_fast_path() -> None:
    t = NOW - dt.timedelta(minutes=5)
    base: dict[str, Any] = {
        "sensor_id": "low-00042",
        "sensor_kind": "low_cost",
        "lat": 41.4,
        "lon": 2.17,
        "time": "2026-05-04T07:55:00Z",
        "pollutant": "pm25",
        "value": 12,
        "unit": "ug/m3",
    }
    lines = [
        json.dumps(base),  # bench_stream.Fleet
        json.dumps(base | {"sensor_kind": "mobile", "speed_mps": 4.2, "heading_deg": 90.0}),
        json.dumps(base | {"speed_mps": None, "heading_deg": None}),  # sensors/output.py
        json.dumps(base | {"time": t.isoformat()}),  # Parquet payloads
        json.dumps(base | {"unit": "µg/m³"}, ensure_ascii=False),
        json.dumps(base | {"value": 1.5e-05, "lat": 41.0000001}),
        json.dumps(base, separators=(",", ":")),  # Spark's to_json
    ]
    rows = parse_typical(lines)
    assert rows.index.tolist() == list(range(len(lines)))
    assert rows.unit.tolist() == [0] * len(lines)


def test_odd_lines_do_not_take_the_fast_path() -> None:
    good = '{"sensor_id": "s", "sensor_kind": "low_cost", "lat": 41.4, "lon": 2.1, '
    good += '"time": "2026-05-04T07:55:00Z", "pollutant": "no2", "value": 1, "unit": "ppb"}'
    odd = [
        good.replace('"value": 1', '"value": -0'),  # an int 0 for Python, -0.0 for Arrow
        good.replace('"value": 1', '"value": NaN'),
        good.replace('"value": 1', '"value": 1e400'),
        good.replace('"s"', '"\\u0073"'),
        good.replace('"s"', '""'),
        good.replace('"no2"', '"pm10"'),  # ppb of particulate matter
        good.replace("Z", ""),  # no zone
        good.replace('"unit": "ppb"', '"unit": "ppb", "unit": "ug/m3"'),
        good.replace('"unit"', '"note": 1, "unit"'),
        good.replace(", ", ",  "),
        good + " ",
        good + "\r\n",
        "",
    ]
    assert parse_typical([good, *odd]).index.tolist() == [0]
    assert TYPICAL_LINE.startswith(r"\A")


@given(
    st.lists(
        st.from_regex(
            r"-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,2})?", fullmatch=True
        )
        | st.floats(allow_nan=False, allow_infinity=False).map(repr),
        min_size=1,
        max_size=50,
    )
)
@settings(max_examples=200, **settings_kw)
def test_numbers_are_read_to_the_bit_as_python_reads_them(texts: list[str]) -> None:
    line = '{"sensor_id": "s", "sensor_kind": "low_cost", "lat": %s, "lon": 2.1, '
    line += '"time": "2026-05-04T07:55:00Z", "pollutant": "no2", "value": %s, "unit": "ppb"}'
    rows = parse_typical([line % (t, t) for t in texts])
    expected = np.array([float(json.loads(t)) for t in texts])
    plain = [
        i
        for i, t in enumerate(texts)
        if re.fullmatch(_NUM, t) and not (expected[i] == 0 and t.startswith("-"))
    ]
    assert rows.index.tolist() == plain
    for got in (rows.value, rows.lat):
        assert np.array_equal(got.view(np.int64), expected[rows.index].view(np.int64))


@given(st.lists(lines_of(), min_size=1, max_size=30))
@settings(max_examples=200, **settings_kw)
def test_typical_rows_are_the_readings_of_the_record_path(lines: list[str]) -> None:
    rows = parse_typical(lines)
    every = np.arange(len(rows))
    readings = rows.readings(every)
    assert readings == [coerce_reading(json.loads(lines[i])) for i in rows.index.tolist()]
    assert rows.records(every) == [reading_to_dict(r) for r in readings]


# ---------------------------------------------------------------- memories


@st.composite
def memory_sets(draw: st.DrawFn) -> dict[str, SensorMemory]:
    out: dict[str, SensorMemory] = {}
    for sensor in draw(st.lists(st.sampled_from(SENSORS), unique=True)):
        keys = {
            p: np.array(sorted(ts), dtype=np.int64)
            for p, ts in draw(
                st.dictionaries(
                    st.sampled_from(["no2", "pm10", "o3"]), st.lists(st.integers(-5, 40))
                )
            ).items()
        }
        out[sensor] = SensorMemory(
            keys=keys,
            n_in=draw(st.integers(0, 5)),
            n_valid=draw(st.integers(0, 5)),
            last_time_ms=draw(st.integers(-3, 45)),
            last_kind=draw(st.sampled_from(["", "mobile"])),
            last_lat=draw(st.sampled_from([math.nan, 41.0])),
            last_value_ugm3=draw(st.dictionaries(st.sampled_from(["pm25", "no2"]), st.floats())),
        )
    return out


valid_rows = st.lists(
    st.tuples(
        st.sampled_from(SENSORS),
        st.sampled_from(["no2", "pm10", "pm25", "o3"]),
        st.one_of(  # around -1, the newest's start, and the minute before; or far apart
            st.integers(-70_000, 60), st.sampled_from([-(2**60), 2**60, 2**61])
        ),
        st.floats(allow_nan=False),
        st.sampled_from(["low_cost", "mobile"]),
        st.floats(41, 42),
    ),
    max_size=40,
)


@given(
    memories=memory_sets(),
    rows=valid_rows,
    bad=st.lists(st.sampled_from([*SENSORS, None, "new"])),
    horizon=st.integers(-5, 45),
)
@settings(max_examples=300, **settings_kw)
def test_remember_columns_equals_remember(
    memories: dict[str, SensorMemory],
    rows: list[tuple[str, str, int, float, str, float]],
    bad: list[str | None],
    horizon: int,
) -> None:
    valid = pd.DataFrame(
        {
            "sensor_id": [r[0] for r in rows],
            "sensor_kind": [r[4] for r in rows],
            "lat": [r[5] for r in rows],
            "lon": [r[5] / 2 for r in rows],
            "time_ms": [r[2] for r in rows],
            "pollutant": [r[1] for r in rows],
            "value": [r[3] for r in rows],
            "unit": ["ug/m3" for _ in rows],
            "value_ugm3": [r[3] for r in rows],
            "speed_mps": [math.nan for _ in rows],
            "heading_deg": [math.nan for _ in rows],
        },
        columns=list(VALID_COLUMNS),
    )
    rejected = pd.DataFrame({"sensor_id": bad})
    slow = _remember(memories, valid, rejected, horizon)
    fast = _remember_columns(memories, valid, rejected, horizon)
    empty = pd.DataFrame()
    assert_same(GateResult(empty, empty, fast), GateResult(empty, empty, slow))
