"""Parsers (JSON lines, CSV, the Barcelona feed), write_jsonl and the dead-letter store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from airpath.air.deadletters import DeadLetterWriter, read_dead_letters
from airpath.air.frames import readings_to_frame, validate_frame
from airpath.air.parsers import parse_barcelona_realtime, parse_csv, parse_jsonl, write_jsonl
from airpath.air.readings import Rejected, RejectReason, validate
from airpath.air.schema import Pollutant, Reading, SensorKind, Unit
from shared import shared_data

NOW = dt.datetime(2024, 4, 21, 18, 0, tzinfo=dt.UTC)
LINE = (
    '{"sensor_id": "b7", "sensor_kind": "mobile", "lat": 41.39, "lon": 2.17,'
    ' "time": "2024-04-21T17:30:00Z", "pollutant": "pm25", "value": 12.5, "unit": "ug/m3",'
    ' "speed_mps": 4.2, "heading_deg": 180}'
)


def test_jsonl_good_and_malformed() -> None:
    bad = ["{not json", "[1, 2]", '{"sensor_id": "x"}', LINE.replace("12.5", '"12.5"')]
    lines = [LINE, "", *bad, LINE.replace('"pm25"', '"benzene"')]
    readings, rejected = parse_jsonl(lines)
    assert len(readings) == 1
    assert readings[0].speed_mps == 4.2
    assert readings[0].time == dt.datetime(2024, 4, 21, 17, 30, tzinfo=dt.UTC)
    assert [r.reason for r in rejected] == [RejectReason.MALFORMED] * 4 + [
        RejectReason.UNKNOWN_POLLUTANT
    ]
    assert [r.payload for r in rejected[:4]] == bad
    assert rejected[0].source == "jsonl:3"


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    rs = [
        Reading("s1", SensorKind.LOW_COST, 41.4, 2.2, NOW, Pollutant.NO2, 9.0, Unit.PPB),
        Reading("s2", SensorKind.MOBILE, 41.4, 2.2, NOW, Pollutant.O3, 1.0, Unit.UGM3, 3.0, 9.0),
    ]
    path = write_jsonl(rs, tmp_path / "out" / "r.jsonl")
    assert [p.name for p in path.parent.iterdir()] == ["r.jsonl"]  # no temp file left
    readings, rejected = parse_jsonl(path)
    assert readings == rs
    assert rejected == []


def test_csv(tmp_path: Path) -> None:
    text = (
        "sensor_id,sensor_kind,lat,lon,time,pollutant,value,unit,speed_mps,heading_deg\n"
        "s1,reference,41.4,2.2,2024-04-21T17:00:00+00:00,no2,8,µg/m³,,\n"
        "s2,reference,north,2.2,2024-04-21T17:00:00+00:00,no2,8,ug/m3,,\n"
        "s3,reference,41.4\n"
        "s4,reference,41.4,2.2,2024-04-21T17:00:00+00:00,pm10,8,ppb,,\n"
    )
    (tmp_path / "r.csv").write_text(text, encoding="utf-8")
    for source in (text, tmp_path / "r.csv"):
        readings, rejected = parse_csv(source)
        assert [r.sensor_id for r in readings] == ["s1"]
        assert readings[0].unit is Unit.UGM3
        assert [r.reason for r in rejected] == [
            RejectReason.MALFORMED,
            RejectReason.MALFORMED,
            RejectReason.UNIT_NOT_VALID_FOR_POLLUTANT,
        ]
        assert rejected[1].payload == "s3,reference,41.4"


def test_barcelona_snapshot() -> None:
    path = shared_data("bcn", "stations_realtime_2024-04-21T19.json")
    readings, rejected = parse_barcelona_realtime(path)
    assert rejected == []
    assert len(readings) == 11  # 7 stations: 7 NO2 + 4 PM10
    assert {r.sensor_kind for r in readings} == {SensorKind.REFERENCE}
    assert {r.pollutant for r in readings} == {Pollutant.NO2, Pollutant.PM10}
    # 19:00 in Barcelona in April is CEST (UTC+2).
    assert {r.time for r in readings} == {dt.datetime(2024, 4, 21, 17, tzinfo=dt.UTC)}
    gracia = next(r for r in readings if r.sensor_id == "bcn:IJ")
    assert (gracia.value, gracia.lat, gracia.lon) == (99.0, 41.398743, 2.153385)
    same, _ = parse_barcelona_realtime(json.loads(path.read_text(encoding="utf-8")))
    assert same == readings
    result = validate(readings, now=NOW, area=(2.05, 41.32, 2.23, 41.47))
    assert len(result.valid) == 11


def test_barcelona_bad_measures() -> None:
    feed = [
        {
            "code": "XX",
            "latitude": "41.4",
            "longitude": "2.2",
            "measures": [
                {"acronym": "NO<sub>2</sub>", "unit": "µg/m³", "value": "", "datetime": "x"},
                {
                    "acronym": "NO<sub>2</sub>",
                    "unit": "µg/m³",
                    "value": "n/d",
                    "datetime": "2024-01-10 08:00:00",
                },
                {
                    "acronym": "SO<sub>2</sub>",
                    "unit": "µg/m³",
                    "value": "3",
                    "datetime": "2024-01-10 08:00:00",
                },
                {
                    "acronym": "O<sub>3</sub>",
                    "unit": "µg/m³",
                    "value": "30",
                    "datetime": "2024-01-10 08:00:00",
                },
            ],
        },
        {"code": "YY"},
    ]
    readings, rejected = parse_barcelona_realtime(feed)
    assert [r.reason for r in rejected] == [
        RejectReason.MALFORMED,
        RejectReason.MALFORMED,
        RejectReason.UNKNOWN_POLLUTANT,
        RejectReason.MALFORMED,
    ]
    # January is CET (UTC+1).
    assert readings[0].time == dt.datetime(2024, 1, 10, 7, tzinfo=dt.UTC)


def test_dead_letters_round_trip(tmp_path: Path) -> None:
    writer = DeadLetterWriter(tmp_path / "dead")
    assert read_dead_letters(tmp_path / "dead").empty
    _, rejected = parse_jsonl(["{oops", '{"a": 1}'])
    assert writer.write([]) is None
    writer.write(rejected, received_at=NOW)
    frame = readings_to_frame(
        [Reading("s", SensorKind.REFERENCE, 41.4, 2.2, NOW, Pollutant.NO2, 1e6)]
    )
    _, rejected_df = validate_frame(frame, now=NOW)
    writer.write_frame(rejected_df, source="spark", received_at=NOW)
    writer.write([Rejected(RejectReason.DUPLICATE, "dup", "{}", "mqtt")])
    out = read_dead_letters(tmp_path / "dead")
    assert len(out) == 4
    assert list(out["reason"]) == ["malformed", "malformed", "out_of_range", "duplicate"]
    assert list(out["payload"][:2]) == ["{oops", '{"a": 1}']
    assert out["received_at"].iloc[0] == pd.Timestamp(NOW)
    assert not list((tmp_path / "dead").glob(".*"))  # no temp files left behind
