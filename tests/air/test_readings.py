"""Units, validation rules and the record-vs-frame oracle for sensor readings."""

from __future__ import annotations

import datetime as dt
import doctest
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airpath.air import frames, parsers, readings, rules, units
from airpath.air.frames import readings_to_frame, validate_frame
from airpath.air.parsers import parse_jsonl
from airpath.air.readings import (
    BOUNDS_UGM3,
    Area,
    RecentKeys,
    RejectReason,
    ValidReading,
    reading_to_dict,
    validate,
)
from airpath.air.schema import Pollutant, Reading, SensorKind, Unit
from airpath.air.units import parse_unit, ppb_to_ugm3, to_ugm3, ugm3_to_ppb
from airpath.errors import CoordinateError, ReadingSchemaError, UnitError

NOW = dt.datetime(2024, 4, 21, 18, 0, tzinfo=dt.UTC)
BCN = (2.05, 41.32, 2.23, 41.47)  # lon0, lat0, lon1, lat1
WATERMARK = NOW - dt.timedelta(minutes=30)


def good(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "sensor_id": "s1",
        "sensor_kind": "mobile",
        "lat": 41.39,
        "lon": 2.17,
        "time": "2024-04-21T17:30:00+00:00",
        "pollutant": "no2",
        "value": 20.0,
        "unit": "ppb",
        "speed_mps": 5.0,
        "heading_deg": 90.0,
    }
    record.update(changes)
    return record


# ---------------------------------------------------------------- units


@pytest.mark.parametrize("module", [units, readings, rules, frames, parsers])
def test_doctests(module: object) -> None:
    failed, _ = doctest.testmod(module)  # type: ignore[arg-type]
    assert failed == 0


def test_known_conversions() -> None:
    assert ppb_to_ugm3(1.0, Pollutant.NO2) == pytest.approx(1.9125, abs=1e-3)
    assert ppb_to_ugm3(1.0, Pollutant.O3) == pytest.approx(1.9954, abs=1e-3)
    # At 0 °C the molar volume is 22.414 L/mol: 46.0055 / 22.414 = 2.0525.
    assert ppb_to_ugm3(1.0, Pollutant.NO2, temperature_c=0.0) == pytest.approx(2.0525, 1e-4)
    assert to_ugm3(1.5, "mg/m3", Pollutant.PM25) == 1500.0
    assert to_ugm3(7.0, "µg/m³", Pollutant.PM10) == 7.0


@pytest.mark.parametrize("spelling", ["µg/m³", "ug/m3", "µg/m3", "UG/M3", "μg/m³", " ug/m3 "])
def test_microgram_spellings(spelling: str) -> None:
    assert parse_unit(spelling) is Unit.UGM3


def test_ppb_for_particulates_is_an_error() -> None:
    with pytest.raises(UnitError, match="particulate"):
        ppb_to_ugm3(1.0, Pollutant.PM10)
    with pytest.raises(UnitError):
        parse_unit("ppm")


@given(
    value=st.floats(-1e6, 1e6),
    pollutant=st.sampled_from([Pollutant.NO2, Pollutant.O3]),
    temperature_c=st.floats(-40, 50),
    pressure_hpa=st.floats(500, 1100),
)
def test_ppb_round_trip(
    value: float, pollutant: Pollutant, temperature_c: float, pressure_hpa: float
) -> None:
    kw = {"temperature_c": temperature_c, "pressure_hpa": pressure_hpa}
    back = ugm3_to_ppb(ppb_to_ugm3(value, pollutant, **kw), pollutant, **kw)
    assert back == pytest.approx(value, rel=1e-12, abs=1e-9)


# ---------------------------------------------------------------- one bad record per reason

BAD: dict[RejectReason, dict[str, Any]] = {
    RejectReason.MALFORMED: good(lat="41.39"),
    RejectReason.UNKNOWN_SENSOR_KIND: good(sensor_kind="satellite"),
    RejectReason.UNKNOWN_POLLUTANT: good(pollutant="co"),
    RejectReason.UNKNOWN_UNIT: good(unit="ppm"),
    RejectReason.UNIT_NOT_VALID_FOR_POLLUTANT: good(pollutant="pm10", unit="ppb"),
    RejectReason.MISSING_TIMESTAMP: good(time="2024-04-21T17:30:00"),
    RejectReason.NON_FINITE_VALUE: good(value=math.inf),
    RejectReason.BAD_COORDINATES: good(lat=91.0),
    RejectReason.BAD_MOTION: good(speed_mps=45.0),
    RejectReason.FUTURE_TIMESTAMP: good(time="2024-04-21T18:06:00+00:00"),
    RejectReason.STALE_TIMESTAMP: good(time="2024-04-20T17:59:00+00:00"),
    RejectReason.OUTSIDE_AREA: good(lat=41.6),
    RejectReason.OUT_OF_RANGE: good(value=1100.0),  # 1100 ppb ≈ 2104 µg/m³ NO2
    RejectReason.LATE: good(time="2024-04-21T17:00:00+00:00"),  # before WATERMARK
    RejectReason.DUPLICATE: good(),  # follows a first copy of good()
}


def test_every_reason_has_a_bad_record() -> None:
    assert set(BAD) == set(RejectReason)


@pytest.mark.parametrize("reason", list(RejectReason))
def test_each_reason(reason: RejectReason) -> None:
    batch = [good(), BAD[reason]] if reason is RejectReason.DUPLICATE else [BAD[reason]]
    result = validate(batch, now=NOW, area=BCN, watermark=WATERMARK)
    assert [r.reason for r in result.rejected] == [reason]
    assert result.counts == {reason: 1}
    assert result.rejected[0].message
    assert result.rejected[0].payload.startswith("{")


def test_more_edges() -> None:
    kw: dict[str, Any] = {"now": NOW, "area": BCN}
    ok = validate([good(heading_deg=None, speed_mps=math.nan)], **kw)
    assert len(ok.valid) == 1  # NaN/None motion = not reported
    assert validate([good(heading_deg=360.0)], **kw).counts == {RejectReason.BAD_MOTION: 1}
    fixed = good(sensor_kind="reference", speed_mps=-3.0)  # motion only matters for mobiles
    assert len(validate([fixed], **kw).valid) == 1
    assert validate([good(value=-6.0, unit="ug/m3")], **kw).counts == {RejectReason.OUT_OF_RANGE: 1}
    assert len(validate([good(value=-4.0, unit="ug/m3")], **kw).valid) == 1
    assert validate([good(time=None)], **kw).counts == {RejectReason.MISSING_TIMESTAMP: 1}
    assert validate([good(time="yesterday")], **kw).counts == {RejectReason.MALFORMED: 1}
    assert len(validate([good(lat=41.475)], **kw).valid) == 1  # inside the 1 km margin
    assert len(validate([good(lat=41.6)], now=NOW).valid) == 1  # no area, no check


def test_conversion_and_normalisation() -> None:
    (v,) = validate([good(pollutant="NO2", unit="PPB", sensor_kind="Mobile")], now=NOW).valid
    assert isinstance(v, ValidReading)
    assert v.reading.pollutant is Pollutant.NO2
    assert v.reading.sensor_kind is SensorKind.MOBILE
    assert v.value_ugm3 == pytest.approx(20.0 * ppb_to_ugm3(1.0, Pollutant.NO2))


def test_seen_keys_catch_replays() -> None:
    seen = RecentKeys(max_size=2)
    assert len(validate([good()], now=NOW, seen=seen).valid) == 1
    assert validate([good()], now=NOW, seen=seen).counts == {RejectReason.DUPLICATE: 1}
    for minute in range(2):  # push the first key out of the bounded set
        validate([good(time=f"2024-04-21T17:0{minute}:00+00:00")], now=NOW, seen=seen)
    assert len(seen) == 2
    assert len(validate([good()], now=NOW, seen=seen).valid) == 1


def test_typed_readings_are_accepted() -> None:
    r = Reading("s", SensorKind.REFERENCE, 41.4, 2.2, NOW, Pollutant.PM25, 0.01, Unit.MGM3)
    (v,) = validate([r], now=NOW).valid
    assert v.value_ugm3 == 10.0


def test_bounds_documented_for_every_pollutant() -> None:
    assert set(BOUNDS_UGM3) == set(Pollutant)
    with pytest.raises(CoordinateError, match="area"):
        Area(2.2, 41.3, 2.1, 41.4)


# ---------------------------------------------------------------- oracles

_times = st.integers(-30 * 3600, 600).map(lambda s: NOW + dt.timedelta(seconds=s))
_readings = st.builds(
    Reading,
    sensor_id=st.sampled_from(["a", "b", ""]),
    sensor_kind=st.sampled_from([*SensorKind, "drone"]),
    lat=st.sampled_from([41.39, 41.6, 95.0, math.nan]),
    lon=st.sampled_from([2.17, 2.5, -200.0]),
    time=_times,
    pollutant=st.sampled_from([*Pollutant, "co"]),
    value=st.sampled_from([10.0, -2.0, -50.0, 3000.0, 1e5, math.nan, math.inf]),
    unit=st.sampled_from([*Unit, "µg/m³", "ppm"]),
    speed_mps=st.sampled_from([None, 3.0, -1.0, 30.0, math.inf]),
    heading_deg=st.sampled_from([None, 0.0, 359.9, 360.0]),
)
_records = st.one_of(
    st.sampled_from(list(BAD.values())),
    st.dictionaries(st.sampled_from(sorted(good())), st.none() | st.integers() | st.text()),
    _readings,
)


@given(st.lists(_records, max_size=30))
@settings(max_examples=40, deadline=None)
def test_rows_in_equals_valid_plus_rejected(batch: list[Any]) -> None:
    result = validate(batch, now=NOW, area=BCN)
    assert result.n_in == len(batch)
    assert sum(result.counts.values()) == len(result.rejected)


@given(st.lists(_readings, max_size=25))
@settings(max_examples=40, deadline=None)
def test_record_and_frame_versions_agree(batch: list[Reading]) -> None:
    seen_a, seen_b = RecentKeys(), RecentKeys()
    kw: dict[str, Any] = {"now": NOW, "area": BCN, "watermark": WATERMARK}
    by_record = validate(batch, seen=seen_a, **kw)
    valid, rejected = validate_frame(readings_to_frame(batch), seen=seen_b, **kw)
    assert len(valid) + len(rejected) == len(batch)
    assert list(rejected["reason"]) == [r.reason.value for r in by_record.rejected]
    assert list(rejected["payload"]) == [r.payload for r in by_record.rejected]
    assert list(rejected["message"]) == [r.message for r in by_record.rejected]
    assert list(valid["value_ugm3"]) == [v.value_ugm3 for v in by_record.valid]
    assert list(valid["unit"]) == [v.reading.unit.value for v in by_record.valid]
    assert len(seen_a) == len(seen_b)


def test_frame_edges() -> None:
    frame = readings_to_frame(
        [Reading("s", SensorKind.REFERENCE, 41.4, 2.2, NOW, Pollutant.NO2, 10.0)]
    )
    naive = frame.assign(time=frame["time"].dt.tz_localize(None))
    _, rejected = validate_frame(naive, now=NOW)
    assert list(rejected["reason"]) == [RejectReason.MISSING_TIMESTAMP.value]
    with pytest.raises(ReadingSchemaError, match="lat"):
        validate_frame(frame.drop(columns=["lat"]), now=NOW)
    valid, _ = validate_frame(frame.drop(columns=["speed_mps", "heading_deg"]), now=NOW)
    assert list(valid["value_ugm3"]) == [10.0]


@given(st.lists(_readings, max_size=25))
@settings(max_examples=40, deadline=None)
def test_parsed_readings_validate_the_same_without_coercing_twice(batch: list[Reading]) -> None:
    lines = [json.dumps(reading_to_dict(r), default=str) for r in batch]
    parsed, _ = parse_jsonl(lines)
    kw: dict[str, Any] = {"now": NOW, "area": BCN, "watermark": WATERMARK}
    plain = validate(parsed, seen=RecentKeys(), **kw)
    typed = validate(parsed, seen=RecentKeys(), typed=True, **kw)
    assert [r.reason for r in typed.rejected] == [r.reason for r in plain.rejected]
    assert [r.message for r in typed.rejected] == [r.message for r in plain.rejected]
    assert [v.value_ugm3 for v in typed.valid] == [v.value_ugm3 for v in plain.valid]
