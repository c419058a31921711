"""Columnar parsing and checking of plainly typical reading lines: the gate's fast path.

:func:`airpath.air.gate.gate_lines` judges a micro-batch's lines one at a time with the
record validator (:func:`airpath.air.readings.validate`), which costs tens of µs per line
in Python. Almost every line the job sees has one shape, though: a flat JSON object with
the schema's fields in the schema's order, as :mod:`airpath.sensors.output`, the
benchmark fleet, the Parquet source and Spark's ``to_json`` write it. This module reads
such lines a whole batch at a time in C (Arrow's RE2 and JSON reader) and checks them with
NumPy; the gate sends every other line to the record path, so the two paths together give
exactly what the record path alone gives.

Exactness rests on three things:

* **Only lines whose meaning cannot differ are read here.** :data:`TYPICAL_LINE` accepts a
  line only when it is an object with the fields in schema order, each once, text fields
  as strings without escapes or control characters, numbers in plain JSON notation with
  at most 16 integer digits, 20 decimals and a two-digit exponent (finite, never
  subnormal), ``speed_mps``/``heading_deg`` optional or ``null``. For such a line Arrow's
  JSON reader and :func:`json.loads` agree field for field: both round decimal text to
  the nearest double; a negative zero is sent back (``-0`` is an int 0 for Python, -0.0
  for Arrow). Lines Python cannot encode as UTF-8 (lone surrogates) are sent back too.
* **Values are interpreted by the record path's own functions**, once per distinct value:
  sensor kind, pollutant and unit spellings by the ``lookup_*`` functions of
  :mod:`airpath.air.rules`, times by :meth:`datetime.datetime.fromisoformat` exactly as
  :func:`~airpath.air.readings.coerce_reading` does, conversion factors by
  :func:`~airpath.air.units.ugm3_per_unit` (the product ``value * factor`` is the same
  IEEE operation in NumPy as in Python).
* **The fast path only accepts.** :func:`check_typical` applies every rule of
  ``readings._check`` plus the watermark; a row breaking any of them goes back to the
  record path (as the :class:`~airpath.air.schema.Reading` that path would have made of
  the line, :meth:`TypicalRows.readings`), which names the reason and writes the message.
  Duplicates are resolved by the gate over all rows of the batch.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from airpath.air.rules import (
    BOUNDS_UGM3,
    CLOCK_SKEW_TOLERANCE,
    MAX_SPEED_MPS,
    MS,
    Area,
    lookup_pollutant,
    lookup_sensor_kind,
    lookup_unit,
    time_ms,
)
from airpath.air.schema import Pollutant, Reading, SensorKind, Unit
from airpath.air.units import ugm3_per_unit, unit_allowed

__all__ = [
    "KINDS",
    "POLLUTANTS",
    "TYPICAL_LINE",
    "UNITS",
    "TypicalRows",
    "check_typical",
    "parse_typical",
]

KINDS: tuple[SensorKind, ...] = tuple(SensorKind)
POLLUTANTS: tuple[Pollutant, ...] = tuple(Pollutant)
UNITS: tuple[Unit, ...] = tuple(Unit)

_KIND_VALUES = [k.value for k in KINDS]
_POLLUTANT_VALUES = [p.value for p in POLLUTANTS]
_UNIT_VALUES = [u.value for u in UNITS]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]

# A JSON string without escapes or control characters: its text is its value.
_STR = r'"[^"\\\x00-\x1f]*"'
_ID = r'"[^"\\\x00-\x1f]+"'
# A JSON number Arrow and Python read alike (see the module docstring).
_NUM = r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,2})?"


def _member(name: str, value: str) -> str:
    return rf',[ ]?"{name}":[ ]?{value}'


TYPICAL_LINE = (
    r"\A\{"
    rf'"sensor_id":[ ]?{_ID}'
    + _member("sensor_kind", _STR)
    + _member("lat", _NUM)
    + _member("lon", _NUM)
    + _member("time", _STR)
    + _member("pollutant", _STR)
    + _member("value", _NUM)
    + _member("unit", _STR)
    + f"(?:{_member('speed_mps', f'(?:{_NUM}|null)')})?"
    + f"(?:{_member('heading_deg', f'(?:{_NUM}|null)')})?"
    + r"\}\n\z"  # each line is matched with the newline that ends it
)
"""RE2 pattern of a plainly typical line (with its terminating newline)."""

_SCHEMA = pa.schema(
    [
        ("sensor_id", pa.string()),
        ("sensor_kind", pa.string()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("time", pa.string()),
        ("pollutant", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("speed_mps", pa.float64()),
        ("heading_deg", pa.float64()),
    ]
)
_READ_OPTIONS = pa_json.ReadOptions(use_threads=False, block_size=1 << 24)
_PARSE_OPTIONS = pa_json.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="error")


@dataclass(frozen=True)
class TypicalRows:
    """Typical lines that :func:`~airpath.air.readings.coerce_reading` turns into readings,
    as columns; ``index`` is each row's position in the batch (increasing). Codes index
    :data:`KINDS`, :data:`POLLUTANTS`, :data:`UNITS` and ``sensor_names``."""

    index: Ints
    sensor_names: list[str]
    sensor: Ints
    kind: Ints
    pollutant: Ints
    unit: Ints
    time_ms: Ints
    time_code: Ints  # index into time_texts
    time_texts: list[str]
    lat: Floats
    lon: Floats
    value: Floats
    speed_mps: Floats
    heading_deg: Floats

    def __len__(self) -> int:
        return len(self.index)

    def readings(self, rows: Ints) -> list[Reading]:
        """The :class:`Reading` :func:`~airpath.air.readings.coerce_reading` makes of each
        of these rows (by position), for the record path to judge."""
        times = self._times(rows)
        columns = self._columns(rows)
        return [
            Reading(
                sensor_id=self.sensor_names[sensor],
                sensor_kind=KINDS[kind],
                lat=lat,
                lon=lon,
                time=times[time],
                pollutant=POLLUTANTS[pollutant],
                value=value,
                unit=UNITS[unit],
                # NaN is null or absent here: a "NaN" literal is not typical
                speed_mps=None if math.isnan(speed) else speed,
                heading_deg=None if math.isnan(heading) else heading,
            )
            for sensor, kind, lat, lon, time, pollutant, value, unit, speed, heading in columns
        ]

    def records(self, rows: Ints) -> list[dict[str, object]]:
        """:func:`~airpath.air.readings.reading_to_dict` of :meth:`readings`, made directly
        (for the messages of repeated rows, which can be many)."""
        iso = {k: t.isoformat() for k, t in self._times(rows).items()}
        columns = self._columns(rows)
        return [
            {
                "sensor_id": self.sensor_names[sensor],
                "sensor_kind": _KIND_VALUES[kind],
                "lat": lat,
                "lon": lon,
                "time": iso[time],
                "pollutant": _POLLUTANT_VALUES[pollutant],
                "value": value,
                "unit": _UNIT_VALUES[unit],
                "speed_mps": None if math.isnan(speed) else speed,
                "heading_deg": None if math.isnan(heading) else heading,
            }
            for sensor, kind, lat, lon, time, pollutant, value, unit, speed, heading in columns
        ]

    def _times(self, rows: Ints) -> dict[int, dt.datetime]:
        """The UTC time of each distinct time text among these rows, by its code."""
        return {
            k: dt.datetime.fromisoformat(self.time_texts[k]).astimezone(dt.UTC)
            for k in set(self.time_code[rows].tolist())
        }

    def _columns(self, rows: Ints) -> Iterator[tuple[Any, ...]]:
        """Per row: sensor, kind, lat, lon, time code, pollutant, value, unit, speed,
        heading, as Python scalars."""
        return zip(
            self.sensor[rows].tolist(),
            self.kind[rows].tolist(),
            self.lat[rows].tolist(),
            self.lon[rows].tolist(),
            self.time_code[rows].tolist(),
            self.pollutant[rows].tolist(),
            self.value[rows].tolist(),
            self.unit[rows].tolist(),
            self.speed_mps[rows].tolist(),
            self.heading_deg[rows].tolist(),
            strict=True,
        )

    def take(self, rows: Flags | Ints) -> TypicalRows:
        """The rows selected by a mask or positions (``sensor_names`` shared)."""
        return TypicalRows(
            index=self.index[rows],
            sensor_names=self.sensor_names,
            sensor=self.sensor[rows],
            kind=self.kind[rows],
            pollutant=self.pollutant[rows],
            unit=self.unit[rows],
            time_ms=self.time_ms[rows],
            time_code=self.time_code[rows],
            time_texts=self.time_texts,
            lat=self.lat[rows],
            lon=self.lon[rows],
            value=self.value[rows],
            speed_mps=self.speed_mps[rows],
            heading_deg=self.heading_deg[rows],
        )


def _no_rows() -> TypicalRows:
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return TypicalRows(i, [], i, i, i, i, i, i, [], f, f, f, f, f)


def _as_arrow(lines: list[str]) -> tuple[Ints, Any]:
    """The lines that can go to Arrow (all but those Python cannot encode as UTF-8), as one
    large-string array whose items keep their terminating newline."""
    text = "\n".join(lines) + "\n"
    if text.isascii():
        kept = np.arange(len(lines), dtype=np.int64)
        data = text.encode("ascii")
        sizes = np.fromiter(map(len, lines), np.int64, len(lines))
    else:
        encoded: list[bytes] = []
        positions: list[int] = []
        for i, line in enumerate(lines):
            try:
                encoded.append(line.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate: Python's json reads it, Arrow not
                continue
            positions.append(i)
        kept = np.asarray(positions, dtype=np.int64)
        data = b"\n".join(encoded) + b"\n"
        sizes = np.fromiter(map(len, encoded), np.int64, len(encoded))
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes + 1, out=offsets[1:])
    array = pa.LargeStringArray.from_buffers(len(sizes), pa.py_buffer(offsets), pa.py_buffer(data))
    return kept, array


def _time_ms(text: str) -> int | None:
    """Event time in ms as :func:`~airpath.air.readings.coerce_reading` reads ``text``;
    None when it would not make a reading of it."""
    try:
        time = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if time.tzinfo is None or time.utcoffset() is None:
        return None
    try:
        return time_ms(time.astimezone(dt.UTC))
    except (OverflowError, ValueError):  # the record path raises; let it
        return None


def _codes(column: Any, interpret: Callable[[str], int]) -> Ints:
    """Per row, ``interpret`` of its value, computed once per distinct value."""
    encoded = pc.dictionary_encode(column)
    table = np.fromiter(
        (interpret(v) for v in encoded.dictionary.to_pylist()), np.int64, len(encoded.dictionary)
    )
    return table[encoded.indices.to_numpy(zero_copy_only=False)]


def _enum_code(lookup: Callable[[str], Any], members: tuple[Any, ...]) -> Callable[[str], int]:
    def code(text: str) -> int:
        found = lookup(text)
        return -1 if found is None else members.index(found)

    return code


_NO_TIME = np.iinfo(np.int64).min


def _time_code(text: str) -> int:
    t = _time_ms(text)
    return _NO_TIME if t is None else t


# Whether a unit can express a pollutant, by code; the extra row and column are for -1.
_ALLOWED = np.zeros((len(UNITS) + 1, len(POLLUTANTS) + 1), dtype=np.bool_)
for _i, _u in enumerate(UNITS):
    for _j, _p in enumerate(POLLUTANTS):
        _ALLOWED[_i, _j] = unit_allowed(_u, _p)


def parse_typical(lines: list[str]) -> TypicalRows:
    """The typical lines of ``lines`` that make readings, read as columns.

    A line left out is simply not typical (or not a reading); the record path judges it.
    """
    if not lines:
        return _no_rows()
    try:
        kept, array = _as_arrow(lines)
        matched = pc.match_substring_regex(array, TYPICAL_LINE).to_numpy(zero_copy_only=False)
        index = kept[matched]
        if not len(index):
            return _no_rows()
        if len(index) == len(lines):
            data = array.buffers()[2]  # every line, each with its newline
        else:
            data = pa.py_buffer(("\n".join([lines[i] for i in index]) + "\n").encode())
        table = pa_json.read_json(
            io.BytesIO(data), read_options=_READ_OPTIONS, parse_options=_PARSE_OPTIONS
        )
    except TypeError:  # not all lines are str: the record path fails as it always did
        return _no_rows()
    except pa.ArrowException:  # cannot happen for matched lines; the record path is exact
        return _no_rows()
    if table.num_rows != len(index):
        return _no_rows()
    return _columns(index, {name: _one_array(table.column(name)) for name in _SCHEMA.names})


def _one_array(column: Any) -> Any:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _columns(index: Ints, columns: dict[str, Any]) -> TypicalRows:
    sensor = pc.dictionary_encode(columns["sensor_id"])
    kind = _codes(columns["sensor_kind"], _enum_code(lookup_sensor_kind, KINDS))
    pollutant = _codes(columns["pollutant"], _enum_code(lookup_pollutant, POLLUTANTS))
    unit = _codes(columns["unit"], _enum_code(lookup_unit, UNITS))
    time = pc.dictionary_encode(columns["time"])
    time_texts: list[str] = time.dictionary.to_pylist()
    time_code = time.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    times = np.fromiter(map(_time_code, time_texts), np.int64, len(time_texts))[time_code]
    numbers = {
        name: columns[name].to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        for name in ("lat", "lon", "value", "speed_mps", "heading_deg")
    }
    ok = (kind >= 0) & (pollutant >= 0) & (unit >= 0) & (times != _NO_TIME)
    ok &= _ALLOWED[unit, pollutant]  # code -1 picks the last row or column: all False
    for x in numbers.values():
        # "-0" is an int 0 for Python, -0.0 for Arrow; "-0.0" is -0.0 for both.
        ok &= ~((x == 0) & np.signbit(x))
    rows = TypicalRows(
        index=index,
        sensor_names=sensor.dictionary.to_pylist(),
        sensor=sensor.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        kind=kind,
        pollutant=pollutant,
        unit=unit,
        time_ms=times,
        time_code=time_code,
        time_texts=time_texts,
        lat=numbers["lat"],
        lon=numbers["lon"],
        value=numbers["value"],
        speed_mps=numbers["speed_mps"],
        heading_deg=numbers["heading_deg"],
    )
    return rows if ok.all() else rows.take(ok)


def conversion_factors(*, temperature_c: float, pressure_hpa: float) -> Floats:
    """``ugm3_per_unit`` by (unit, pollutant) code; NaN where the unit cannot express the
    pollutant."""
    out = np.full((len(UNITS), len(POLLUTANTS)), np.nan)
    for i, u in enumerate(UNITS):
        for j, p in enumerate(POLLUTANTS):
            if unit_allowed(u, p):
                out[i, j] = ugm3_per_unit(
                    u, p, temperature_c=temperature_c, pressure_hpa=pressure_hpa
                )
    return out


def check_typical(
    rows: TypicalRows,
    *,
    now_ms: int,
    max_age: dt.timedelta,
    area: Area | None,
    watermark_ms: int | None,
    temperature_c: float,
    pressure_hpa: float,
) -> tuple[Flags, Floats]:
    """Which rows pass every rule of ``readings._check`` and the watermark, and every row's
    value in µg/m³ (meaningful where it passes). ``now_ms`` is ``check_now(now, max_age)``
    and ``watermark_ms`` the watermark's ``time_ms``, as :func:`readings.validate` computes
    them."""
    lat, lon, t = rows.lat, rows.lon, rows.time_ms
    ok = np.isfinite(rows.value)
    ok &= np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    speed, heading = rows.speed_mps, rows.heading_deg
    with np.errstate(invalid="ignore"):
        bad_speed = ~np.isnan(speed) & ~((speed >= 0.0) & (speed <= MAX_SPEED_MPS))
        bad_heading = ~np.isnan(heading) & ~((heading >= 0.0) & (heading < 360.0))
    mobile = rows.kind == KINDS.index(SensorKind.MOBILE)
    ok &= ~(mobile & (bad_speed | bad_heading))
    ok &= t <= now_ms + CLOCK_SKEW_TOLERANCE // MS
    ok &= t >= now_ms - max_age // MS
    if area is not None:
        ok &= (area.lat_min_deg <= lat) & (lat <= area.lat_max_deg)
        ok &= (area.lon_min_deg <= lon) & (lon <= area.lon_max_deg)
    factors = conversion_factors(temperature_c=temperature_c, pressure_hpa=pressure_hpa)
    value_ugm3 = rows.value * factors[rows.unit, rows.pollutant]
    bounds = np.array([BOUNDS_UGM3[p] for p in POLLUTANTS], dtype=np.float64)
    low, high = bounds[rows.pollutant, 0], bounds[rows.pollutant, 1]
    ok &= (low <= value_ugm3) & (value_ugm3 <= high)
    if watermark_ms is not None:
        ok &= t >= watermark_ms
    return ok, value_ugm3
