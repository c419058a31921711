"""``GET /v1/field``: the current street-level pollution field as GeoJSON, for maps.

One LineString feature per street segment in the bounding box, simplified to the zoom
level, with the concentration and its uncertainty at every forecast horizon (or at the
one ``horizon`` asked for). At most ``max_field_features`` features: past that, the
longest segments are kept and ``truncated`` says so.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from airpath.api.context import ApiContext, get_context
from airpath.api.models import FieldInfo, LineString
from airpath.api.problems import ProblemError, problem_responses
from airpath.api.route_models import POLLUTANT_PATTERN
from airpath.api.segments import BBox, tolerance_deg

router = APIRouter(tags=["field"])
Ctx = Annotated[ApiContext, Depends(get_context)]

_NUM = r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)\s*"
BBOX_PATTERN = rf"^{_NUM},{_NUM},{_NUM},{_NUM}$"


def parse_bbox(text: str) -> BBox:
    """``"lon0,lat0,lon1,lat1"`` → numbers; ValueError unless west < east, south < north."""
    if not re.fullmatch(BBOX_PATTERN, text):
        raise ValueError("expected 'lon0,lat0,lon1,lat1' in decimal degrees")
    lon0, lat0, lon1, lat1 = (float(x) for x in text.split(","))
    if not (-180.0 <= lon0 < lon1 <= 180.0 and -90.0 <= lat0 < lat1 <= 90.0):
        raise ValueError("bbox must be west,south,east,north with west < east, south < north")
    return (lon0, lat0, lon1, lat1)


class FieldQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bbox: str | None = Field(
        None,
        pattern=BBOX_PATTERN,
        description="west,south,east,north (lon0,lat0,lon1,lat1); default: the network",
        examples=["24.93,60.16,24.96,60.18"],
    )
    pollutant: str = Field("no2", pattern=POLLUTANT_PATTERN)
    zoom: int = Field(14, ge=0, le=22, description="Web-map zoom the geometry is simplified to")
    horizon: float | None = Field(
        None,
        ge=0.0,
        le=10080.0,
        allow_inf_nan=False,
        description="One forecast horizon (minutes); default: every horizon of the field",
    )

    @field_validator("bbox")
    @classmethod
    def _check_bbox(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bbox(value)
        return value


class FieldProperties(BaseModel):
    segment_id: int
    name: str
    concentration_ugm3: list[float] = Field(description="One value per entry of horizons_min")
    uncertainty_ugm3: list[float] | None = Field(
        description="Standard deviation per horizon (null: the field has none)"
    )


class FieldFeature(BaseModel):
    type: Literal["Feature"]
    id: int = Field(description="The segment id")
    geometry: LineString
    properties: FieldProperties


class FieldCollection(BaseModel):
    """Street segments with their pollution, as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    bbox: list[float] = Field(min_length=4, max_length=4, description="The area asked for")
    features: list[FieldFeature]
    pollutant: str
    horizons_min: list[float] = Field(description="Minutes after valid_at, one per value")
    zoom: int
    limit: int = Field(description="Most features one answer holds")
    total_features: int = Field(description="Segments in the bbox")
    truncated: bool = Field(description="True when total_features > limit")
    field: FieldInfo


@router.get(
    "/v1/field",
    response_model=FieldCollection,
    responses=problem_responses(422),
    operation_id="get_field",
    summary="The current street-level pollution field",
    description=__doc__.split("\n\n")[1].replace("\n", " "),
)
def get_field(query: Annotated[FieldQuery, Query()], ctx: Ctx) -> Response:
    fld = ctx.router.field  # one field for the whole answer, however many swaps meanwhile
    if query.pollutant not in fld.concentration_ugm3:
        raise ProblemError(
            422,
            "bad-option",
            "Invalid field option",
            f"unknown pollutant {query.pollutant!r}; the field has "
            f"{', '.join(fld.concentration_ugm3)}",
        )
    rows = list(range(len(fld.horizons_min)))
    if query.horizon is not None:
        if query.horizon not in fld.horizons_min:
            raise ProblemError(
                422,
                "bad-option",
                "Invalid field option",
                f"horizon {query.horizon:g} min not in the field's horizons "
                f"{', '.join(f'{h:g}' for h in fld.horizons_min)}",
            )
        rows = [fld.horizons_min.index(query.horizon)]
    bbox = _network_bbox(ctx) if query.bbox is None else parse_bbox(query.bbox)
    limit = ctx.settings.max_field_features
    segments, total = ctx.segments.query(bbox, limit)
    conc = ctx.segments.values(fld.concentration_ugm3[query.pollutant][rows], segments)
    unc_edges = fld.uncertainty_ugm3.get(query.pollutant)
    unc = None if unc_edges is None else ctx.segments.values(unc_edges[rows], segments)
    coords = ctx.segments.coordinates(
        segments, tolerance_deg(query.zoom, 0.5 * (bbox[1] + bbox[3]))
    )
    conc_rows: list[list[float]] = np.round(conc.T, 3).tolist()
    unc_rows: list[Any] = [None] * len(segments) if unc is None else np.round(unc.T, 3).tolist()
    names = ctx.segments.names[segments].tolist()
    features = [
        {
            "type": "Feature",
            "id": seg,
            "geometry": {"type": "LineString", "coordinates": line},
            "properties": {
                "segment_id": seg,
                "name": name,
                "concentration_ugm3": c,
                "uncertainty_ugm3": u,
            },
        }
        for seg, line, name, c, u in zip(
            segments.tolist(), coords, names, conc_rows, unc_rows, strict=True
        )
    ]
    body = {
        "type": "FeatureCollection",
        "bbox": list(bbox),
        "features": features,
        "pollutant": query.pollutant,
        "horizons_min": [fld.horizons_min[k] for k in rows],
        "zoom": query.zoom,
        "limit": limit,
        "total_features": total,
        "truncated": total > limit,
        "field": ctx.field_info(fld.version, fld.valid_at),
    }
    return JSONResponse(body)


def _network_bbox(ctx: ApiContext) -> BBox:
    lon0, lat0, lon1, lat1 = (float(x) for x in ctx.network.manifest["bbox"])
    return (lon0, lat0, lon1, lat1)
