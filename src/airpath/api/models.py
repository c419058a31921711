"""Request and response shapes shared by several endpoints, as pydantic models.

Responses are documented by these models in the OpenAPI schema; handlers build plain
dicts of the same shape and send them without re-validating them (a route's geometry is
thousands of numbers: checking them on every answer would cost more than routing). The
tests validate real answers against these models, so the two cannot drift apart.

Units follow OSRM where OSRM has the concept (``distance`` in metres, ``duration`` in
seconds, ``[lon, lat]`` positions) and carry them in the name elsewhere (``dose_ug``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat

Position = list[float]  # [lon, lat], GeoJSON order


class LineString(BaseModel):
    type: Literal["LineString"]
    coordinates: list[Position] = Field(description="[lon, lat] positions, WGS84 degrees")


class FieldInfo(BaseModel):
    """Which pollution field answered, and how fresh its data is."""

    version: str = Field(description="Field version ('prior' for the annual priors)")
    valid_at: AwareDatetime = Field(description="Time the field's horizon 0 is for")
    source: Literal["store", "prior"] = Field(
        description="'store': a snapshot from the field store; 'prior': the annual priors"
    )
    model_version: str | None = Field(None, description="Model that made the snapshot")
    age_s: float | None = Field(
        description="Seconds from the field's newest reading (else its valid_at) to now"
    )
    freshness_s: float | None = Field(
        None, description="Seconds from the newest reading to publication"
    )
    stale: bool = Field(description="Older than the server's max_age_s, or store unreachable")
    max_age_s: float | None = Field(description="The server's freshness limit (null: none)")
    store_reachable: bool | None = Field(
        None, description="Whether the field store answers (null without a store)"
    )


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    network_key: str
    edges: int
    field: FieldInfo


class SensorLatest(BaseModel):
    """The latest reading of one sensor, as the streaming job last saw it."""

    model_config = ConfigDict(extra="allow")

    sensor_id: str
    sensor_kind: str
    lat: FiniteFloat
    lon: FiniteFloat
    time: dt.datetime
    values_ugm3: dict[str, FiniteFloat] = Field(description="Latest value per pollutant, µg/m³")


class SensorsDocument(BaseModel):
    updated_at: dt.datetime | None = Field(description="Time of the newest reading, if any")
    sensors: list[SensorLatest]
