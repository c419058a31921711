"""Validate sensor readings where they enter: every row is kept or rejected with a reason.

Two front doors share one set of rules: :func:`validate` for Python records (typed
:class:`Reading` objects or raw mappings such as decoded JSON) and :func:`validate_frame`
for Arrow tables / pandas batches with ``READING_SCHEMA`` columns (the Spark job calls it
on each pandas batch). Both return every input row exactly once, either valid (with the
concentration converted to µg/m³) or rejected with a :class:`RejectReason`, a message and
the original payload; ``rows in == valid + rejected`` always holds.

When a row breaks several rules the first reason in :class:`RejectReason` order wins, in
both front doors. Duplicates are looked for last, among rows that pass every other rule,
so a bad row never hides a later good one.

Conventions: a NaN ``speed_mps`` / ``heading_deg`` means "not reported" (that is what a
null becomes in a pandas float column), so it is accepted; infinities are not. Times are
compared at millisecond resolution, the resolution of ``READING_SCHEMA``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from airpath.air.rules import (
    BOUNDS_UGM3,
    CLOCK_SKEW_TOLERANCE,
    DEFAULT_MAX_AGE,
    MAX_SPEED_MPS,
    MS,
    Area,
    AreaLike,
    Key,
    RecentKeys,
    RejectReason,
    as_area,
    bad_motion,
    check_now,
    is_number,
    lookup_pollutant,
    lookup_sensor_kind,
    lookup_unit,
    message_for,
    payload_json,
    time_ms,
)
from airpath.air.schema import Reading, SensorKind
from airpath.air.units import (
    REFERENCE_PRESSURE_HPA,
    REFERENCE_TEMPERATURE_C,
    ugm3_per_unit,
    unit_allowed,
)

__all__ = [
    "BOUNDS_UGM3",
    "CLOCK_SKEW_TOLERANCE",
    "DEFAULT_MAX_AGE",
    "MAX_SPEED_MPS",
    "Area",
    "RecentKeys",
    "RejectReason",
    "Rejected",
    "ValidReading",
    "ValidationResult",
    "coerce_reading",
    "reading_to_dict",
    "validate",
]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected row: why, a human message, the original payload and where it came from.

    ``payload`` is the raw line for parse failures, otherwise the record as JSON.
    """

    reason: RejectReason
    message: str
    payload: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class ValidReading:
    """A reading that passed every rule, with its concentration in µg/m³."""

    reading: Reading
    value_ugm3: float


@dataclass(frozen=True, slots=True)
class ValidationResult:
    valid: list[ValidReading] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def n_in(self) -> int:
        return len(self.valid) + len(self.rejected)

    @property
    def counts(self) -> dict[RejectReason, int]:
        """Rejections per reason (reasons with none are absent)."""
        return dict(Counter(r.reason for r in self.rejected))


def reading_to_dict(reading: Reading) -> dict[str, object]:
    """A reading as a JSON-ready dict with the schema's field names (time as ISO 8601)."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(reading):
        value = getattr(reading, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        elif f.name in ("speed_mps", "heading_deg") and value is not None and math.isnan(value):
            value = None  # NaN motion means "not reported", as in a pandas frame
        out[f.name] = value
    return out


# ---------------------------------------------------------------- records


_REQUIRED_TEXT = ("sensor_id", "sensor_kind", "pollutant", "unit")
_REQUIRED_NUMBERS = ("lat", "lon", "value")


def malformed_message(name: str | None) -> str:
    return f"field {name!r} is missing or not text"


def coerce_reading(raw: Mapping[str, object]) -> Reading | tuple[RejectReason, str]:
    """A typed :class:`Reading` from a decoded record, or the reason it cannot be one.

    Applies the rules up to :attr:`RejectReason.MISSING_TIMESTAMP` (what the typed record
    cannot represent); :func:`validate` applies the rest. Times may be ISO 8601 strings.
    """
    for name in _REQUIRED_TEXT:
        if not isinstance(raw.get(name), str) or not raw.get(name):
            return RejectReason.MALFORMED, malformed_message(name)
    for name in _REQUIRED_NUMBERS:
        if not is_number(raw.get(name)):
            return RejectReason.MALFORMED, f"field {name!r} is missing or not a number"
    for name in ("speed_mps", "heading_deg"):
        if raw.get(name) is not None and not is_number(raw.get(name)):
            return RejectReason.MALFORMED, f"field {name!r} is not a number"
    time = raw.get("time")
    if isinstance(time, str):
        try:
            time = dt.datetime.fromisoformat(time)
        except ValueError:
            return RejectReason.MALFORMED, f"time {time!r} is not ISO 8601"
    elif time is not None and not isinstance(time, dt.datetime):
        return RejectReason.MALFORMED, f"time {time!r} is not a date-time"
    kind = lookup_sensor_kind(raw["sensor_kind"])
    pollutant = lookup_pollutant(raw["pollutant"])
    unit = lookup_unit(raw["unit"])
    if kind is None:
        return RejectReason.UNKNOWN_SENSOR_KIND, message_for(RejectReason.UNKNOWN_SENSOR_KIND, raw)
    if pollutant is None:
        return RejectReason.UNKNOWN_POLLUTANT, message_for(RejectReason.UNKNOWN_POLLUTANT, raw)
    if unit is None:
        return RejectReason.UNKNOWN_UNIT, message_for(RejectReason.UNKNOWN_UNIT, raw)
    if not unit_allowed(unit, pollutant):
        reason = RejectReason.UNIT_NOT_VALID_FOR_POLLUTANT
        return reason, message_for(reason, raw)
    if time is None or time.tzinfo is None or time.utcoffset() is None:
        return RejectReason.MISSING_TIMESTAMP, message_for(RejectReason.MISSING_TIMESTAMP, raw)
    speed, heading = raw.get("speed_mps"), raw.get("heading_deg")
    return Reading(
        sensor_id=str(raw["sensor_id"]),
        sensor_kind=kind,
        lat=float(raw["lat"]),  # type: ignore[arg-type]  # checked by _is_number
        lon=float(raw["lon"]),  # type: ignore[arg-type]
        time=time.astimezone(dt.UTC),
        pollutant=pollutant,
        value=float(raw["value"]),  # type: ignore[arg-type]
        unit=unit,
        speed_mps=None if speed is None else float(speed),  # type: ignore[arg-type]
        heading_deg=None if heading is None else float(heading),  # type: ignore[arg-type]
    )


def _check(
    reading: Reading,
    *,
    now_ms: int,
    max_age_ms: int,
    area: Area | None,
    temperature_c: float,
    pressure_hpa: float,
) -> RejectReason | float:
    """The first rule a typed reading breaks, or its value in µg/m³ if it breaks none."""
    t_ms = time_ms(reading.time)
    if not math.isfinite(reading.value):
        return RejectReason.NON_FINITE_VALUE
    lat, lon = reading.lat, reading.lon
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        return RejectReason.BAD_COORDINATES
    if reading.sensor_kind is SensorKind.MOBILE and bad_motion(
        reading.speed_mps, reading.heading_deg
    ):
        return RejectReason.BAD_MOTION
    if t_ms > now_ms + CLOCK_SKEW_TOLERANCE // MS:
        return RejectReason.FUTURE_TIMESTAMP
    if t_ms < now_ms - max_age_ms:
        return RejectReason.STALE_TIMESTAMP
    if area is not None and not area.contains(lat, lon):
        return RejectReason.OUTSIDE_AREA
    factor = ugm3_per_unit(
        reading.unit, reading.pollutant, temperature_c=temperature_c, pressure_hpa=pressure_hpa
    )
    value_ugm3 = reading.value * factor
    low, high = BOUNDS_UGM3[reading.pollutant]
    if not (low <= value_ugm3 <= high):
        return RejectReason.OUT_OF_RANGE
    return value_ugm3


def validate(
    readings: Iterable[Reading | Mapping[str, object]],
    *,
    now: dt.datetime,
    area: AreaLike | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    seen: RecentKeys | None = None,
    temperature_c: float = REFERENCE_TEMPERATURE_C,
    pressure_hpa: float = REFERENCE_PRESSURE_HPA,
    source: str = "",
    watermark: dt.datetime | None = None,
    typed: bool = False,
    payloads: Sequence[str] | None = None,
) -> ValidationResult:
    """Split ``readings`` into valid ones (in µg/m³) and rejected ones with reasons.

    ``seen`` holds keys of earlier batches; the keys of this batch's valid readings are
    added to it, so passing the same ``RecentKeys`` each time catches replays.
    ppb is converted at ``temperature_c`` and ``pressure_hpa`` (see :mod:`.units`).
    A reading older than ``watermark`` (the streaming job's event-time watermark) is
    ``LATE``: its time window has been closed and published. ``typed=True`` says the
    :class:`Reading` items came from a parser here (:func:`coerce_reading` already
    checked their types), so they are not coerced again. ``payloads``, parallel to
    ``readings``, are the original texts kept with rejections (default: the record as
    JSON).
    """
    now_ms = check_now(now, max_age)
    watermark_ms = None if watermark is None else time_ms(watermark)
    box = as_area(area)
    result = ValidationResult()
    batch_keys: set[Key] = set()
    for n, item in enumerate(readings):
        record: dict[str, object] | None
        coerced: Reading | tuple[RejectReason, str]
        if isinstance(item, Reading) and typed:
            record, coerced = None, item
        elif isinstance(item, Reading):
            record = reading_to_dict(item)
            coerced = coerce_reading({**record, "time": item.time})
        else:
            record = dict(item)
            coerced = coerce_reading(item)
        if isinstance(coerced, tuple):
            reason, message = coerced
            text = payloads[n] if payloads is not None else payload_json(record or {})
            result.rejected.append(Rejected(reason, message, text, source))
            continue
        outcome = _check(
            coerced,
            now_ms=now_ms,
            max_age_ms=max_age // MS,
            area=box,
            temperature_c=temperature_c,
            pressure_hpa=pressure_hpa,
        )
        late = watermark_ms is not None and time_ms(coerced.time) < watermark_ms
        if isinstance(outcome, float) and late:
            outcome = RejectReason.LATE
        if isinstance(outcome, float):
            key = (coerced.sensor_id, time_ms(coerced.time), coerced.pollutant.value)
            if key in batch_keys or (seen is not None and key in seen):
                outcome = RejectReason.DUPLICATE
            else:
                batch_keys.add(key)
                if seen is not None:
                    seen.add(key)
                result.valid.append(ValidReading(coerced, outcome))
                continue
        if record is None:
            record = reading_to_dict(coerced)
        text = payloads[n] if payloads is not None else payload_json(record)
        result.rejected.append(Rejected(outcome, message_for(outcome, record), text, source))
    return result
