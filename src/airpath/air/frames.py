"""Vectorised validation of reading tables (Arrow or pandas with ``READING_SCHEMA`` columns).

The same rules, in the same order, as :func:`airpath.air.readings.validate`; the Spark job
calls :func:`validate_frame` on each pandas batch. Numeric columns are checked with NumPy;
only the enum columns (looked up once per distinct value) and the duplicate scan touch
Python objects.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from airpath.air.readings import malformed_message, reading_to_dict
from airpath.air.rules import (
    BOUNDS_UGM3,
    CLOCK_SKEW_TOLERANCE,
    DEFAULT_MAX_AGE,
    MAX_SPEED_MPS,
    MS,
    AreaLike,
    Key,
    RecentKeys,
    RejectReason,
    as_area,
    check_now,
    lookup_pollutant,
    lookup_sensor_kind,
    lookup_unit,
    message_for,
    payload_json,
    time_ms,
)
from airpath.air.schema import READING_SCHEMA, Pollutant, Reading, SensorKind, Unit
from airpath.air.units import (
    REFERENCE_PRESSURE_HPA,
    REFERENCE_TEMPERATURE_C,
    ugm3_per_unit,
    unit_allowed,
)
from airpath.errors import InputError, ReadingSchemaError

__all__ = ["REJECTED_COLUMNS", "readings_to_frame", "validate_frame"]

REJECTED_COLUMNS = ("reason", "message", "payload")
"""Columns ``validate_frame`` adds to the rejected rows (after the input's columns)."""

_OPTIONAL = ("speed_mps", "heading_deg")
_REASONS = list(RejectReason)


def readings_to_frame(readings: Iterable[Reading]) -> pd.DataFrame:
    """Readings as a pandas frame with ``READING_SCHEMA`` columns (time in UTC, ms)."""
    rows = [{**reading_to_dict(r), "time": r.time} for r in readings]
    return pa.Table.from_pylist(rows, schema=READING_SCHEMA).to_pandas()


def _time_ms(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(ms since the epoch, has-a-zoned-time mask) for a time column of any dtype."""
    n = len(column)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        zoned = column.notna().to_numpy()
        utc = column.dt.tz_convert("UTC").dt.tz_localize(None)
        ms = utc.to_numpy(dtype="datetime64[ms]").astype(np.int64)  # NaT → int64 min
        return ms, zoned
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)  # naive: no zone at all
    ms_list, zoned_list = [], []
    for t in column:
        ok = isinstance(t, dt.datetime) and t.tzinfo is not None and t.utcoffset() is not None
        zoned_list.append(ok)
        ms_list.append(pd.Timestamp(t).as_unit("ms").value if ok else 0)
    return np.asarray(ms_list, dtype=np.int64), np.asarray(zoned_list, dtype=bool)


def _row_record(row: dict[str, object]) -> dict[str, object]:
    """A frame row as the record path sees it: ISO times, None for unreported motion."""
    out: dict[str, object] = {}
    for name, value in row.items():
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime().isoformat()
        elif value is pd.NaT:
            value = None
        elif isinstance(value, float) and name in _OPTIONAL and math.isnan(value):
            value = None  # a null in a pandas float column
        out[name] = value
    return out


def validate_frame(
    frame: pd.DataFrame | pa.Table,
    *,
    now: dt.datetime,
    area: AreaLike | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    seen: RecentKeys | None = None,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
    watermark: dt.datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(valid, rejected)`` rows of a reading table; every input row lands in one of them.

    ``valid`` has the input columns (enum columns normalised, e.g. ``"µg/m³"`` →
    ``"ug/m3"``) plus ``value_ugm3``; ``rejected`` has the input columns plus ``reason``
    (a :class:`RejectReason` value), ``message`` and ``payload`` (the row as JSON).
    Raises :class:`~airpath.errors.ReadingSchemaError` if required columns are missing.
    """
    df = frame.to_pandas() if isinstance(frame, pa.Table) else frame
    required = [c for c in READING_SCHEMA.names if c not in _OPTIONAL]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReadingSchemaError(f"reading table lacks columns {missing}")
    df = df.reset_index(drop=True)
    for name in _OPTIONAL:
        if name not in df.columns:
            df[name] = np.nan
    now_ms = check_now(now, max_age)
    box = as_area(area)
    n = len(df)
    code = np.full(n, -1, dtype=np.int64)  # index into _REASONS, -1 while still valid

    def reject(mask: np.ndarray, reason: RejectReason) -> None:
        code[(code == -1) & mask] = _REASONS.index(reason)

    sensor_id: list[object] = df["sensor_id"].tolist()
    kind = [lookup_sensor_kind(x) for x in df["sensor_kind"].tolist()]
    pollutant = [lookup_pollutant(x) for x in df["pollutant"].tolist()]
    unit = [lookup_unit(x) for x in df["unit"].tolist()]
    bad_field: list[str | None] = [None] * n  # the first text field that is not text
    for name in ("sensor_id", "sensor_kind", "pollutant", "unit"):
        for i, x in enumerate(df[name].tolist()):
            if bad_field[i] is None and not (isinstance(x, str) and x):
                bad_field[i] = name
    reject(np.array([f is not None for f in bad_field], bool), RejectReason.MALFORMED)
    reject(np.array([k is None for k in kind], bool), RejectReason.UNKNOWN_SENSOR_KIND)
    reject(np.array([p is None for p in pollutant], bool), RejectReason.UNKNOWN_POLLUTANT)
    reject(np.array([u is None for u in unit], bool), RejectReason.UNKNOWN_UNIT)
    # One conversion factor per (unit, pollutant) pair: the same float as the record path.
    factor = np.full(n, np.nan)
    pairs: dict[tuple[Unit, Pollutant], float] = {}
    for i in np.flatnonzero(code == -1).tolist():
        u, p = unit[i], pollutant[i]
        if u is None or p is None:
            continue
        if (u, p) not in pairs:
            pairs[(u, p)] = (
                ugm3_per_unit(u, p, temperature_c=temperature_c, pressure_hpa=pressure_hpa)
                if unit_allowed(u, p)
                else math.nan
            )
        factor[i] = pairs[(u, p)]
    reject(np.isnan(factor), RejectReason.UNIT_NOT_VALID_FOR_POLLUTANT)
    t_ms, zoned = _time_ms(df["time"])
    reject(~zoned, RejectReason.MISSING_TIMESTAMP)

    value = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
    speed = pd.to_numeric(df["speed_mps"], errors="coerce").to_numpy(dtype=float)
    heading = pd.to_numeric(df["heading_deg"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        reject(~np.isfinite(value), RejectReason.NON_FINITE_VALUE)
        good_coords = np.isfinite(lat) & np.isfinite(lon)
        good_coords &= (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        reject(~good_coords, RejectReason.BAD_COORDINATES)
        bad_speed = ~np.isnan(speed) & ~((speed >= 0.0) & (speed <= MAX_SPEED_MPS))
        bad_heading = ~np.isnan(heading) & ~((heading >= 0.0) & (heading < 360.0))
        mobile = np.array([k is SensorKind.MOBILE for k in kind], bool)
        reject(mobile & (bad_speed | bad_heading), RejectReason.BAD_MOTION)
        reject(t_ms > now_ms + CLOCK_SKEW_TOLERANCE // MS, RejectReason.FUTURE_TIMESTAMP)
        reject(t_ms < now_ms - max_age // MS, RejectReason.STALE_TIMESTAMP)
        if box is not None:
            inside = (lat >= box.lat_min_deg) & (lat <= box.lat_max_deg)
            inside &= (lon >= box.lon_min_deg) & (lon <= box.lon_max_deg)
            reject(~inside, RejectReason.OUTSIDE_AREA)
        value_ugm3 = value * factor
        low = np.array([BOUNDS_UGM3[p][0] if p else np.nan for p in pollutant])
        high = np.array([BOUNDS_UGM3[p][1] if p else np.nan for p in pollutant])
        in_range = (value_ugm3 >= low) & (value_ugm3 <= high)
        reject(~in_range, RejectReason.OUT_OF_RANGE)
        if watermark is not None:
            reject(t_ms < time_ms(watermark), RejectReason.LATE)

    batch_keys: set[Key] = set()
    duplicate = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(code == -1).tolist():
        key = (str(sensor_id[i]), int(t_ms[i]), str(pollutant[i]))
        if key in batch_keys or (seen is not None and key in seen):
            duplicate[i] = True
            continue
        batch_keys.add(key)
        if seen is not None:
            seen.add(key)
    reject(duplicate, RejectReason.DUPLICATE)

    ok = code == -1
    valid = df.loc[ok].copy()
    keep = np.flatnonzero(ok).tolist()
    valid["sensor_kind"] = [str(kind[i]) for i in keep]
    valid["pollutant"] = [str(pollutant[i]) for i in keep]
    valid["unit"] = [str(unit[i]) for i in keep]
    valid["value_ugm3"] = value_ugm3[ok]
    rejected = df.loc[~ok].copy()
    records = [
        _row_record({str(k): v for k, v in row.items()})
        for row in rejected.to_dict(orient="records")
    ]
    reasons = [_REASONS[c] for c in code[~ok]]
    rejected["reason"] = [r.value for r in reasons]
    rejected["message"] = [
        malformed_message(bad_field[i]) if r is RejectReason.MALFORMED else message_for(r, rec)
        for i, r, rec in zip(np.flatnonzero(~ok).tolist(), reasons, records, strict=True)
    ]
    rejected["payload"] = [payload_json(rec) for rec in records]
    return valid.reset_index(drop=True), rejected.reset_index(drop=True)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`~airpath.errors.InputError` naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lack columns {missing}")
