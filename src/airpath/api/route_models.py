"""``/v1/route``: the request (query string or JSON body) and the GeoJSON answer.

The answer is a GeoJSON FeatureCollection (RFC 7946) with one Feature per route, the
requested one first, then the alternatives. Route statistics use OSRM's names where OSRM
has them (``distance`` m, ``duration`` s, ``legs``, ``steps``, ``maneuver``, ``waypoints``)
and airpath's unit-suffixed names for exposure (``dose_ug``, ``mean_concentration_ugm3``).
``waypoints``, ``pollutant``, ``depart`` and ``field`` are foreign members (RFC 7946 §6.1).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from airpath.api.models import FieldInfo, LineString, Position

Profile = Literal["shortest", "fastest", "least_exposure", "balanced", "comfort"]
PROFILES: tuple[str, ...] = ("shortest", "fastest", "least_exposure", "balanced", "comfort")
# What an answer's route is best for: a profile, or "alternative" for one found by
# penalising the routes already shown (see airpath.routing.alternatives).
RouteProfile = Literal[
    "shortest", "fastest", "least_exposure", "balanced", "comfort", "alternative"
]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
LATLON_PATTERN = rf"^\s*{_NUMBER}\s*,\s*{_NUMBER}\s*$"
POLLUTANT_PATTERN = r"^[a-z0-9]{1,16}$"


class Point(BaseModel):
    """A WGS84 point; the router snaps it to the nearest rideable street."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False, examples=[60.1699])
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False, examples=[24.9384])


def _latlon_text(value: object) -> object:
    """``"lat,lon"`` → ``{"lat": .., "lon": ..}`` (a query string cannot hold an object)."""
    if not isinstance(value, str):
        return value
    if not re.fullmatch(LATLON_PATTERN, value):
        raise ValueError("expected 'lat,lon' in decimal degrees, e.g. '60.1699,24.9384'")
    lat, lon = value.split(",")
    return {"lat": float(lat), "lon": float(lon)}


LatLonText = Annotated[
    Point,
    BeforeValidator(_latlon_text),
    WithJsonSchema({"type": "string", "pattern": LATLON_PATTERN, "examples": ["60.1699,24.9384"]}),
]


class RouteOptions(BaseModel):
    """What a route minimises and how; shared by the GET and POST forms."""

    profile: Profile = Field(
        "least_exposure",
        description="shortest (m), fastest (s), least_exposure (inhaled dose), balanced "
        "(dose vs time, see balance), comfort (cycle infrastructure)",
    )
    pollutant: str = Field(
        "no2", pattern=POLLUTANT_PATTERN, description="Pollutant of the field, e.g. no2, pm25"
    )
    depart: AwareDatetime | None = Field(
        None, description="Departure time with offset; exposure then follows the forecast"
    )
    alternatives: int = Field(0, ge=0, le=3, description="How many alternative routes to add")
    max_detour_pct: float | None = Field(
        None,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        description="Least dose within this much extra distance over the shortest route (%)",
    )
    balance: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="balanced: weight of time against dose, 0..1 (default 0.5)",
    )
    annotations: bool = Field(
        False,
        description="Add each leg's per-edge breakdown (OSRM's annotation): for every "
        "street piece ridden, its length, duration, concentration and dose, e.g. to colour "
        "the line by the air on it",
    )


class RouteQuery(RouteOptions):
    """``GET /v1/route?from=lat,lon&to=lat,lon&...``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    origin: LatLonText = Field(alias="from", description="Start as 'lat,lon'")
    destination: LatLonText = Field(alias="to", description="End as 'lat,lon'")


class RouteBody(RouteOptions):
    """``POST /v1/route`` JSON body."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    origin: Point = Field(alias="from", description="Start")
    destination: Point = Field(alias="to", description="End")


class Maneuver(BaseModel):
    type: Literal["depart", "turn", "arrive"]
    modifier: str = Field(description="straight, slight left, left, ..., uturn; or a compass")
    location: Position
    bearing_before: int = Field(description="Degrees clockwise from north")
    bearing_after: int = Field(description="Degrees clockwise from north")


class RouteStep(BaseModel):
    distance: float = Field(description="Metres")
    duration: float = Field(description="Seconds")
    name: str = Field(description="Street name ('' when the way has none)")
    instruction: str
    maneuver: Maneuver


class Annotation(BaseModel):
    """Per-edge breakdown of a leg, one entry per street piece ridden in order (columns,
    like OSRM's annotation); the coordinates of piece i end where piece i + 1 starts."""

    edge_id: list[int] = Field(description="Directed edge of the network")
    distance: list[float] = Field(description="Metres ridden on the edge")
    duration: list[float] = Field(description="Seconds")
    concentration_ugm3: list[float] = Field(description="Concentration the rider is in")
    dose_ug: list[float] = Field(description="Inhaled dose on the piece, µg")
    walk: list[bool] = Field(description="Whether the bike is walked there")


class RouteLeg(BaseModel):
    """The way from one waypoint to the next (a route has one leg: two waypoints)."""

    distance: float = Field(description="Metres")
    duration: float = Field(description="Seconds")
    dose_ug: float = Field(description="Inhaled dose, µg")
    summary: str = Field(description="Names of the longest streets of the leg")
    steps: list[RouteStep]
    annotation: Annotation | None = Field(
        None, description="Only with annotations=true: the per-edge breakdown"
    )


class VsShortest(BaseModel):
    """Changes against the shortest route, in percent (negative: less)."""

    distance_pct: float
    dose_pct: float


class RouteProperties(BaseModel):
    profile: RouteProfile = Field(
        description="The profile this route is best for; 'alternative' for a route found by "
        "avoiding the streets of the routes before it"
    )
    label: str = Field(description="Human summary of the trade-off")
    engine: str = Field(description="cch, flexible or time-dependent")
    distance: float = Field(description="Metres")
    duration: float = Field(description="Seconds")
    dose_ug: float = Field(description="Inhaled dose of the pollutant, µg")
    mean_concentration_ugm3: float = Field(description="Dose over inhaled volume, µg/m³")
    climb_m: float
    descent_m: float
    vs_shortest: VsShortest
    legs: list[RouteLeg]


class RouteFeature(BaseModel):
    type: Literal["Feature"]
    geometry: LineString
    properties: RouteProperties


class Waypoint(BaseModel):
    """Where a requested point was snapped to (OSRM's waypoint object)."""

    name: str = Field(description="Street the point was snapped to")
    location: Position = Field(description="Snapped [lon, lat]")
    distance: float = Field(description="Metres from the requested point to the street")


class RouteCollection(BaseModel):
    """The routes, best first, as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[RouteFeature] = Field(min_length=1)
    waypoints: list[Waypoint] = Field(min_length=2, max_length=2)
    pollutant: str
    depart: AwareDatetime | None
    field: FieldInfo
