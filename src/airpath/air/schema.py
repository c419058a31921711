"""The one schema of a sensor reading: a typed record and the matching Arrow schema.

Every source (files, MQTT, HTTP, the simulator, city feeds) produces :class:`Reading`
records or Arrow tables with :data:`READING_SCHEMA`; everything downstream (validation,
the Spark job, estimators) reads these and nothing else.

Units: concentrations are stored as reported (``value`` in ``unit``); validation converts
them to µg/m³ (``value_ugm3``). Times are UTC. Coordinates are WGS84 degrees.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import pyarrow as pa


class SensorKind(enum.StrEnum):
    """What kind of instrument made a reading."""

    REFERENCE = "reference"  # a regulatory monitoring station
    LOW_COST = "low_cost"  # a fixed low-cost sensor: biased, drifting, noisy
    MOBILE = "mobile"  # a sensor on a bike, reporting as it moves


class Pollutant(enum.StrEnum):
    NO2 = "no2"
    PM25 = "pm25"
    PM10 = "pm10"
    O3 = "o3"


class Unit(enum.StrEnum):
    UGM3 = "ug/m3"  # µg/m³; "µg/m³" and "ug/m3" are both accepted on input
    PPB = "ppb"  # gases only; converted with the molar volume at stated T and p
    MGM3 = "mg/m3"


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement of one pollutant by one sensor at one time and place."""

    sensor_id: str
    sensor_kind: SensorKind
    lat: float
    lon: float
    time: dt.datetime  # timezone-aware, UTC
    pollutant: Pollutant
    value: float
    unit: Unit = Unit.UGM3
    speed_mps: float | None = None  # mobile sensors
    heading_deg: float | None = None  # mobile sensors, clockwise from north


READING_SCHEMA = pa.schema(
    [
        pa.field("sensor_id", pa.string(), nullable=False),
        pa.field("sensor_kind", pa.string(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("time", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("pollutant", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("speed_mps", pa.float64(), nullable=True),
        pa.field("heading_deg", pa.float64(), nullable=True),
    ]
)
"""Arrow schema of raw readings, field for field the :class:`Reading` record."""
