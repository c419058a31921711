"""The rules readings must pass, shared by the record and the frame validators.

Bounds, tolerances, the reasons for rejection and the small helpers both front doors use,
so :func:`airpath.air.readings.validate` and :func:`airpath.air.frames.validate_frame`
cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airpath.air.schema import Pollutant, SensorKind, Unit
from airpath.air.units import parse_unit
from airpath.errors import CoordinateError, InputError, UnitError

__all__ = [
    "BOUNDS_UGM3",
    "CLOCK_SKEW_TOLERANCE",
    "DEFAULT_MAX_AGE",
    "MAX_SPEED_MPS",
    "Area",
    "AreaLike",
    "Key",
    "RecentKeys",
    "RejectReason",
    "as_area",
    "bad_motion",
    "check_now",
    "is_number",
    "lookup_pollutant",
    "lookup_sensor_kind",
    "lookup_unit",
    "message_for",
    "payload_json",
    "time_ms",
]

DEFAULT_MAX_AGE = dt.timedelta(hours=24)
# Reference stations and phones sync by NTP/GPS to well under a second; cheap sensors with
# a drifting RTC can be minutes off. Later than this is a wrong clock, not a fast one.
CLOCK_SKEW_TOLERANCE = dt.timedelta(minutes=5)
# 72 km/h: above what a bicycle reaches in a city even downhill; faster means the sensor
# rides in a car or the GPS jumped.
MAX_SPEED_MPS = 20.0

BOUNDS_UGM3: dict[Pollutant, tuple[float, float]] = {
    # Lower bound: analysers report small negatives near zero (zero drift, noise); a few
    # µg/m³ below zero is instrument tolerance, more is a fault. Upper bounds are far
    # above anything recorded in ambient air, not limits a real city could reach:
    # NO2: 10× the EU hourly limit of 200 and 5× the alert threshold of 400
    #   (2008/50/EC Annexes XI, XII).
    Pollutant.NO2: (-5.0, 2000.0),
    # O3: ~600 ppb, above the worst hourly values of 1950s Los Angeles smog (~580 ppb).
    Pollutant.O3: (-5.0, 1200.0),
    # PM10: Saharan dust intrusions over Spain and the Canaries have produced hourly PM10
    #   in the low thousands of µg/m³ (February 2020); 5000 leaves room for them.
    Pollutant.PM10: (-5.0, 5000.0),
    # PM2.5: hourly wildfire-smoke peaks reach about 1000 µg/m³.
    Pollutant.PM25: (-5.0, 2000.0),
}


class RejectReason(enum.StrEnum):
    """Why a reading was rejected; declaration order is the order rules are applied."""

    MALFORMED = "malformed"  # unparseable line, missing field or wrong type
    UNKNOWN_SENSOR_KIND = "unknown_sensor_kind"
    UNKNOWN_POLLUTANT = "unknown_pollutant"
    UNKNOWN_UNIT = "unknown_unit"
    UNIT_NOT_VALID_FOR_POLLUTANT = "unit_not_valid_for_pollutant"  # ppb for PM
    MISSING_TIMESTAMP = "missing_timestamp"  # absent or without a time zone
    NON_FINITE_VALUE = "non_finite_value"
    BAD_COORDINATES = "bad_coordinates"  # NaN or outside ±90° / ±180°
    BAD_MOTION = "bad_motion"  # mobile sensor speed or heading out of range
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    OUTSIDE_AREA = "outside_area"
    OUT_OF_RANGE = "out_of_range"  # outside BOUNDS_UGM3 after conversion
    LATE = "late"  # behind the streaming job's event-time watermark
    DUPLICATE = "duplicate"  # same sensor_id, time and pollutant seen before


_M_PER_DEG_LAT = 111_320.0  # mean length of one degree of latitude, metres


@dataclass(frozen=True, slots=True)
class Area:
    """The network's bounding box (WGS84 degrees) grown by ``margin_m`` on every side."""

    lon0: float
    lat0: float
    lon1: float
    lat1: float
    margin_m: float = 1000.0
    lat_min_deg: float = field(init=False)
    lat_max_deg: float = field(init=False)
    lon_min_deg: float = field(init=False)
    lon_max_deg: float = field(init=False)

    def __post_init__(self) -> None:
        corners = (self.lon0, self.lat0, self.lon1, self.lat1, self.margin_m)
        if not all(math.isfinite(c) for c in corners):
            raise CoordinateError(f"area bounds must be finite, got {corners}")
        if not (-180 <= self.lon0 <= self.lon1 <= 180 and -90 <= self.lat0 <= self.lat1 <= 90):
            raise CoordinateError(f"area must be (lon0, lat0, lon1, lat1) ordered, got {corners}")
        if self.margin_m < 0:
            raise CoordinateError(f"area margin must be >= 0 m, got {self.margin_m}")
        margin_lat_deg = self.margin_m / _M_PER_DEG_LAT
        # Widest in degrees at the poleward edge, so the margin is never short of margin_m.
        poleward_lat_deg = min(max(abs(self.lat0), abs(self.lat1)), 89.0)
        margin_lon_deg = margin_lat_deg / math.cos(math.radians(poleward_lat_deg))
        object.__setattr__(self, "lat_min_deg", self.lat0 - margin_lat_deg)
        object.__setattr__(self, "lat_max_deg", self.lat1 + margin_lat_deg)
        object.__setattr__(self, "lon_min_deg", self.lon0 - margin_lon_deg)
        object.__setattr__(self, "lon_max_deg", self.lon1 + margin_lon_deg)

    def contains(self, lat: float, lon: float) -> bool:
        return (
            self.lat_min_deg <= lat <= self.lat_max_deg
            and self.lon_min_deg <= lon <= self.lon_max_deg
        )


AreaLike = Area | tuple[float, float, float, float]
Key = tuple[str, int, str]  # sensor_id, time in ms since the epoch, pollutant


class RecentKeys:
    """A bounded set of recent (sensor_id, time_ms, pollutant) keys; oldest dropped first."""

    def __init__(self, max_size: int = 100_000) -> None:
        if max_size < 1:
            raise InputError(f"RecentKeys needs max_size >= 1, got {max_size}")
        self.max_size = max_size
        self._keys: dict[Key, None] = {}  # dicts keep insertion order

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Key) -> None:
        self._keys.pop(key, None)
        self._keys[key] = None
        while len(self._keys) > self.max_size:
            del self._keys[next(iter(self._keys))]


# ---------------------------------------------------------------- shared rule helpers

MS = dt.timedelta(milliseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _enum_lookup(kind: type[enum.StrEnum], aliases: Mapping[str, str]) -> dict[str, Any]:
    table: dict[str, Any] = {m.value: m for m in kind}
    table.update({alias: kind(value) for alias, value in aliases.items()})
    return table


_KINDS: dict[str, SensorKind] = _enum_lookup(SensorKind, {"lowcost": "low_cost"})
_POLLUTANTS: dict[str, Pollutant] = _enum_lookup(Pollutant, {})


def _squash(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def lookup_sensor_kind(text: object) -> SensorKind | None:
    """``SensorKind`` for a spelling such as ``"Low-cost"``; None when unknown."""
    return _KINDS.get(_squash(text)) if isinstance(text, str) else None


def lookup_pollutant(text: object) -> Pollutant | None:
    """``Pollutant`` for a spelling such as ``"PM2.5"`` or ``"NO2"``; None when unknown."""
    if not isinstance(text, str):
        return None
    return _POLLUTANTS.get(_squash(text).replace(".", "").replace("_", ""))


def lookup_unit(text: object) -> Unit | None:
    try:
        return parse_unit(text) if isinstance(text, str) else None
    except UnitError:
        return None


def time_ms(time: dt.datetime) -> int:
    """Milliseconds since the Unix epoch, floored (the resolution of READING_SCHEMA)."""
    return (time - _EPOCH) // MS


def is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _json_default(x: object) -> str:
    return x.isoformat() if isinstance(x, dt.datetime) else str(x)


def payload_json(record: Mapping[str, object]) -> str:
    """The payload column's text: the record as JSON (NaN kept as ``NaN``)."""
    return json.dumps(dict(record), default=_json_default, ensure_ascii=False)


def bad_motion(speed_mps: float | None, heading_deg: float | None) -> bool:
    """A mobile sensor's speed or heading that cannot be right (NaN means unreported)."""
    speed_known = speed_mps is not None and not math.isnan(speed_mps)
    if speed_known and not (0.0 <= speed_mps <= MAX_SPEED_MPS):  # type: ignore[operator]
        return True
    if heading_deg is not None and not math.isnan(heading_deg):
        return not (0.0 <= heading_deg < 360.0)
    return False


def message_for(reason: RejectReason, record: Mapping[str, object]) -> str:
    """The human message for a rejection, from the reason and the offending record."""
    r = record
    texts = {
        RejectReason.MALFORMED: "record is missing a field or has one of the wrong type",
        RejectReason.UNKNOWN_SENSOR_KIND: f"unknown sensor kind {r.get('sensor_kind')!r}",
        RejectReason.UNKNOWN_POLLUTANT: f"unknown pollutant {r.get('pollutant')!r}",
        RejectReason.UNKNOWN_UNIT: f"unknown unit {r.get('unit')!r}",
        RejectReason.UNIT_NOT_VALID_FOR_POLLUTANT: (
            f"unit {r.get('unit')!r} is not valid for {r.get('pollutant')!r}"
        ),
        RejectReason.MISSING_TIMESTAMP: f"time {r.get('time')!r} is missing or has no zone",
        RejectReason.NON_FINITE_VALUE: f"value {r.get('value')!r} is not finite",
        RejectReason.BAD_COORDINATES: f"lat/lon {r.get('lat')!r}/{r.get('lon')!r} invalid",
        RejectReason.BAD_MOTION: (
            f"speed {r.get('speed_mps')!r} m/s or heading {r.get('heading_deg')!r}° invalid"
        ),
        RejectReason.FUTURE_TIMESTAMP: f"time {r.get('time')} is in the future",
        RejectReason.STALE_TIMESTAMP: f"time {r.get('time')} is older than the maximum age",
        RejectReason.OUTSIDE_AREA: f"lat/lon {r.get('lat')}/{r.get('lon')} outside the area",
        RejectReason.OUT_OF_RANGE: (
            f"{r.get('value')} {r.get('unit')} of {r.get('pollutant')} is physically implausible"
        ),
        RejectReason.DUPLICATE: (
            f"duplicate of {r.get('sensor_id')!r} {r.get('pollutant')} at {r.get('time')}"
        ),
        RejectReason.LATE: f"time {r.get('time')} is behind the event-time watermark",
    }
    return texts[reason]


def as_area(area: AreaLike | None) -> Area | None:
    return area if area is None or isinstance(area, Area) else Area(*area)


def check_now(now: dt.datetime, max_age: dt.timedelta) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(f"now must be timezone-aware, got {now!r}")
    if max_age <= dt.timedelta(0):
        raise InputError(f"max_age must be positive, got {max_age}")
    return time_ms(now)
