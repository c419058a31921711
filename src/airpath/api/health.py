"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (it can serve
fresh routes) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from airpath.api.context import ApiContext, get_context
from airpath.api.models import Health, Readiness
from airpath.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["operations"])
Ctx = Annotated[ApiContext, Depends(get_context)]


@router.get("/healthz", response_model=Health, operation_id="healthz", summary="Liveness")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=problem_responses(503),
    operation_id="readyz",
    summary="Readiness: network loaded and the field fresh",
    description="200 once the app has started with its network and the pollution field's "
    "data is younger than the server's max age (when one is set); 503 otherwise.",
)
async def readyz(ctx: Ctx) -> Response:
    info = ctx.field_info()
    if not ctx.started:
        raise ProblemError(503, "not-ready", "Not ready", "starting up", extra={"field": info})
    if ctx.settings.max_field_age_s and info["stale"]:
        if info["store_reachable"] is False:
            why = "the field store cannot be reached"
        else:
            why = (
                f"field {info['version']} is {info['age_s']:.0f} s old, max {info['max_age_s']:g} s"
            )
        raise ProblemError(503, "not-ready", "Not ready", why, extra={"field": info})
    body = {
        "status": "ready",
        "network_key": ctx.network_key,
        "edges": ctx.network.n_edges,
        "field": info,
    }
    return JSONResponse(body)


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
