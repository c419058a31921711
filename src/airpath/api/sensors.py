"""``GET /v1/sensors``: the latest reading of every sensor, for the map's sensor layer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from airpath.api.context import ApiContext, get_context
from airpath.api.models import SensorsDocument
from airpath.api.problems import ProblemError, problem_responses
from airpath.api.sensors_file import EMPTY
from airpath.errors import SourceError

router = APIRouter(tags=["sensors"])
Ctx = Annotated[ApiContext, Depends(get_context)]


@router.get(
    "/v1/sensors",
    response_model=SensorsDocument,
    responses=problem_responses(503),
    operation_id="get_sensors",
    summary="Latest reading per sensor",
    description="From the streaming job's sensors.json; an empty list before any batch.",
)
def get_sensors(ctx: Ctx) -> Response:
    if ctx.sensors is None:
        return JSONResponse(EMPTY)
    try:
        return JSONResponse(ctx.sensors.read())
    except SourceError as exc:
        raise ProblemError(503, "unavailable", "Sensors unavailable", str(exc)) from exc
