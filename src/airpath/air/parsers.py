"""Reading files in and out: JSON lines, CSV, the Barcelona real-time feed.

Parsers never raise on a bad line: each returns the readings it could build plus a
:class:`~airpath.air.readings.Rejected` per line it could not, with the raw line as
payload. Structural failures (bad JSON, missing field, wrong type) are ``MALFORMED``;
values the typed record cannot hold (unknown pollutant, naive time, ...) get their own
reason. Only an unreadable file raises (:class:`~airpath.errors.SourceError`).

A ``str`` argument is file *content*; pass a :class:`pathlib.Path` (any ``os.PathLike``)
to read a file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from airpath.air.readings import Rejected, RejectReason, coerce_reading, reading_to_dict
from airpath.air.schema import READING_SCHEMA, Reading, SensorKind
from airpath.errors import SourceError

__all__ = [
    "BCN_TIME_ZONE",
    "parse_barcelona_realtime",
    "parse_csv",
    "parse_jsonl",
    "write_jsonl",
]

ParseResult = tuple[list[Reading], list[Rejected]]

# The Ajuntament de Barcelona feed writes local civil time with no offset
# ("2024-04-21 19:00:00", "21/4/2024" + "19:00"), as its web page shows it to residents.
BCN_TIME_ZONE = ZoneInfo("Europe/Madrid")
# Pollutant from the feed's acronym (HTML tags removed); parameter codes as a fallback.
_BCN_ACRONYMS = {"no2": "no2", "pm10": "pm10", "pm25": "pm25", "pm2.5": "pm25", "o3": "o3"}
_BCN_CODES = {"03": "no2", "12": "pm10"}  # the only codes in the 2024-04-21 snapshot
_TAG = re.compile(r"<[^>]+>")


def _read_text(source: str | os.PathLike[str]) -> str:
    if isinstance(source, str):
        return source
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {source}: {exc}") from exc


def _from_record(raw: Mapping[str, Any], line: str, source: str, result: ParseResult) -> None:
    coerced = coerce_reading(raw)
    if isinstance(coerced, Reading):
        result[0].append(coerced)
    else:
        result[1].append(Rejected(coerced[0], coerced[1], line, source))


def parse_jsonl(lines: Iterable[str] | os.PathLike[str], *, source: str = "jsonl") -> ParseResult:
    """Readings from JSON lines with the schema's field names; blank lines are skipped.

    >>> good = '{"sensor_id": "s1", "sensor_kind": "low_cost", "lat": 41.4, "lon": 2.2,' \\
    ...        ' "time": "2024-04-21T17:00:00Z", "pollutant": "no2", "value": 8, "unit": "ppb"}'
    >>> readings, rejected = parse_jsonl([good, "{oops"])
    >>> readings[0].unit, rejected[0].reason, rejected[0].payload
    (<Unit.PPB: 'ppb'>, <RejectReason.MALFORMED: 'malformed'>, '{oops')
    """
    if isinstance(lines, os.PathLike):
        lines = _read_text(lines).splitlines()
    result: ParseResult = ([], [])
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        where = f"{source}:{number}"
        try:
            raw = json.loads(text)
        except ValueError as exc:
            result[1].append(Rejected(RejectReason.MALFORMED, f"bad JSON: {exc}", text, where))
            continue
        if not isinstance(raw, dict):
            message = f"a line must hold a JSON object, not {type(raw).__name__}"
            result[1].append(Rejected(RejectReason.MALFORMED, message, text, where))
            continue
        _from_record(raw, text, where, result)
    return result


_NUMERIC = {f.name for f in READING_SCHEMA if f.type == "double"}


def _csv_value(name: str, text: str | None) -> object:
    if text is None or text.strip() == "":
        return None
    if name in _NUMERIC:
        try:
            return float(text)
        except ValueError:
            return text  # left as text so coerce_reading reports MALFORMED
    return text


def parse_csv(source: str | os.PathLike[str], *, name: str = "csv") -> ParseResult:
    """Readings from CSV with a header row of the schema's field names (any order)."""
    text = _read_text(source)
    rows = io.StringIO(text)
    reader = csv.reader(rows)
    result: ParseResult = ([], [])
    header = next(reader, None)
    if header is None:
        return result
    header = [h.strip() for h in header]
    for fields in reader:
        number = reader.line_num
        where = f"{name}:{number}"
        line = ",".join(fields)
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            message = f"{len(fields)} fields, the header has {len(header)}"
            result[1].append(Rejected(RejectReason.MALFORMED, message, line, where))
            continue
        raw = {h: _csv_value(h, f) for h, f in zip(header, fields, strict=True)}
        _from_record(raw, line, where, result)
    return result


def _bcn_pollutant(measure: Mapping[str, Any]) -> str:
    acronym = _TAG.sub("", str(measure.get("acronym", ""))).strip().lower()
    if acronym in _BCN_ACRONYMS:
        return _BCN_ACRONYMS[acronym]
    return _BCN_CODES.get(str(measure.get("parameter_code")), acronym or "?")


def _bcn_time(measure: Mapping[str, Any]) -> dt.datetime | None:
    text = measure.get("datetime")
    if not isinstance(text, str):
        return None
    local = dt.datetime.fromisoformat(text)
    if local.tzinfo is None:
        # fold=0: in the repeated October hour the first (summer-time) reading is meant.
        local = local.replace(tzinfo=BCN_TIME_ZONE)
    return local.astimezone(dt.UTC)


def _number(text: object) -> object:
    if isinstance(text, str):
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return text
    return text


def parse_barcelona_realtime(
    feed: list[Any] | dict[str, Any] | str | os.PathLike[str], *, source: str = "bcn-realtime"
) -> ParseResult:
    """Readings from the Ajuntament de Barcelona real-time station feed.

    ``feed`` is the decoded JSON (a list of stations), its text, or a path. Each station
    has ``code``, ``name``, ``latitude``/``longitude`` (strings) and ``measures``, each
    with ``value`` (string), ``unit`` (``"µg/m³"``), ``datetime`` (local, naive) and an
    ``acronym`` such as ``"NO<sub>2</sub>"``. Sensor ids are ``"bcn:<code>"``, kind
    REFERENCE, times converted from Europe/Madrid to UTC.
    """
    decoded: Any = feed
    if not isinstance(feed, list | dict):
        try:
            decoded = json.loads(_read_text(feed))
        except ValueError as exc:
            raise SourceError(f"Barcelona feed is not JSON: {exc}") from exc
    stations = decoded if isinstance(decoded, list) else [decoded]
    result: ParseResult = ([], [])
    for station in stations if isinstance(stations, list) else []:
        if not isinstance(station, dict) or not isinstance(station.get("measures"), list):
            line = json.dumps(station, ensure_ascii=False, default=str)
            message = "station without a measures list"
            result[1].append(Rejected(RejectReason.MALFORMED, message, line, source))
            continue
        for measure in station["measures"]:
            where_station = {k: v for k, v in station.items() if k != "measures"}
            line = json.dumps({**where_station, "measure": measure}, ensure_ascii=False)
            if not isinstance(measure, dict):
                result[1].append(Rejected(RejectReason.MALFORMED, "bad measure", line, source))
                continue
            try:
                time = _bcn_time(measure)
            except ValueError as exc:
                result[1].append(Rejected(RejectReason.MALFORMED, str(exc), line, source))
                continue
            raw = {
                "sensor_id": f"bcn:{station.get('code')}",
                "sensor_kind": SensorKind.REFERENCE.value,
                "lat": _number(station.get("latitude")),
                "lon": _number(station.get("longitude")),
                "time": time,
                "pollutant": _bcn_pollutant(measure),
                "value": _number(measure.get("value")),
                "unit": measure.get("unit"),
            }
            _from_record(raw, line, source, result)
    return result


def write_jsonl(readings: Iterable[Reading], path: str | os.PathLike[str]) -> Path:
    """Write readings as JSON lines, atomically: readers see the old file or the new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for reading in readings:
                out.write(json.dumps(reading_to_dict(reading), ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
