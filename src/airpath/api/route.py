"""``GET|POST /v1/route``: thin handlers around :meth:`Router.route` and the GeoJSON form
of its answer (see :mod:`airpath.api.route_models` for the shape)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from airpath.api.context import ApiContext, get_context
from airpath.api.problems import problem_responses
from airpath.api.route_models import (
    Point,
    RouteBody,
    RouteCollection,
    RouteOptions,
    RouteQuery,
)
from airpath.routing.result import Route, RouteResult

router = APIRouter(tags=["routing"])
Ctx = Annotated[ApiContext, Depends(get_context)]
_DESCRIPTION = (
    "A route from `from` to `to` for a profile, with up to 3 alternatives, as a GeoJSON "
    "FeatureCollection: one Feature per route (the requested one first), OSRM-style "
    "`legs`/`steps`, the snapped `waypoints`, and the pollution `field` the answer used. "
    "Errors are problem details: 422 for bad input or a point outside the network, 404 "
    "when no rideable connection exists."
)


@router.get(
    "/v1/route",
    response_model=RouteCollection,
    responses=problem_responses(404, 422),
    operation_id="get_route",
    summary="Route between two points (query string)",
    description=_DESCRIPTION,
)
async def get_route(query: Annotated[RouteQuery, Query()], ctx: Ctx) -> Response:
    return await _dispatch(ctx, query, query.origin, query.destination)


@router.post(
    "/v1/route",
    response_model=RouteCollection,
    responses=problem_responses(400, 404, 422),
    operation_id="post_route",
    summary="Route between two points (JSON body)",
    description=_DESCRIPTION,
)
async def post_route(body: RouteBody, ctx: Ctx) -> Response:
    return await _dispatch(ctx, body, body.origin, body.destination)


async def _dispatch(
    ctx: ApiContext, options: RouteOptions, origin: Point, destination: Point
) -> Response:
    """Answer a plain preset request (about a millisecond of CPU) on the event loop, where
    it costs less than the hand-over to a thread; send the slow kinds (alternatives,
    departure times, detour limits, a custom balance: tens of milliseconds at worst) to
    the thread pool so that they never hold up the loop and its health checks."""
    quick = (
        options.alternatives == 0
        and options.depart is None
        and options.max_detour_pct is None
        and options.balance is None
    )
    if quick:
        return _answer(ctx, options, origin, destination)
    return await run_in_threadpool(_answer, ctx, options, origin, destination)


def _answer(ctx: ApiContext, options: RouteOptions, origin: Point, destination: Point) -> Response:
    result = ctx.router.route(
        (origin.lat, origin.lon),
        (destination.lat, destination.lon),
        options.profile,
        pollutant=options.pollutant,
        depart=options.depart,
        alternatives=options.alternatives,
        max_detour_pct=options.max_detour_pct,
        balance=options.balance,
    )
    ctx.metrics.routes.labels(options.profile).inc()
    field = ctx.field_info(result.field_version, result.field_valid_at)
    return JSONResponse(route_collection(result, field, annotations=options.annotations))


def route_collection(
    result: RouteResult, field: dict[str, Any], *, annotations: bool = False
) -> dict[str, Any]:
    """The :class:`RouteCollection` dict of ``result``."""
    best = result.best
    snap_m = result.meta.get("snap_distance_m", [0.0, 0.0])
    names = best.legs.name
    ends = (
        (result.origin, names[0] if names else "", snap_m[0]),
        (result.destination, names[-1] if names else "", snap_m[1]),
    )
    return {
        "type": "FeatureCollection",
        "features": [route_feature(r, annotations=annotations) for r in result.routes],
        "waypoints": [
            {"name": name, "location": [lon, lat], "distance": float(d)}
            for (lat, lon), name, d in ends
        ],
        "pollutant": result.pollutant,
        "depart": result.depart.isoformat() if result.depart else None,
        "field": field,
    }


def route_feature(r: Route, *, annotations: bool = False) -> dict[str, Any]:
    """One route as a :class:`RouteFeature` dict (rounded to what a rider can notice)."""
    st = r.steps
    steps = [
        {
            "distance": round(distance, 1),
            "duration": round(duration, 1),
            "name": name,
            "instruction": instruction,
            "maneuver": {
                "type": kind,
                "modifier": modifier,
                "location": location,
                "bearing_before": before,
                "bearing_after": after,
            },
        }
        for instruction, name, distance, duration, kind, modifier, location, before, after in zip(
            st.instruction,
            st.name,
            st.distance_m,
            st.duration_s,
            st.type,
            st.modifier,
            st.location,
            st.bearing_before,
            st.bearing_after,
            strict=True,
        )
    ]
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": r.coordinates},
        "properties": {
            "profile": r.profile,
            "label": r.label,
            "engine": r.engine,
            "distance": round(r.distance_m, 1),
            "duration": round(r.duration_s, 1),
            "dose_ug": round(r.dose_ug, 3),
            "mean_concentration_ugm3": round(r.mean_concentration_ugm3, 3),
            "climb_m": round(r.climb_m, 1),
            "descent_m": round(r.descent_m, 1),
            "vs_shortest": {
                "distance_pct": round(r.distance_change_pct, 2),
                "dose_pct": round(r.dose_change_pct, 2),
            },
            "legs": [
                {
                    "distance": round(r.distance_m, 1),
                    "duration": round(r.duration_s, 1),
                    "dose_ug": round(r.dose_ug, 3),
                    "summary": _summary(r),
                    "steps": steps,
                    **({"annotation": _annotation(r)} if annotations else {}),
                }
            ],
        },
    }


def _annotation(r: Route) -> dict[str, list[Any]]:
    """The :class:`Annotation` dict of ``r``'s legs, rounded like the route's totals."""
    legs = r.legs
    return {
        "edge_id": legs.edge_id.tolist(),
        "distance": [round(x, 1) for x in legs.length_m.tolist()],
        "duration": [round(x, 1) for x in legs.duration_s.tolist()],
        "concentration_ugm3": [round(x, 3) for x in legs.concentration_ugm3.tolist()],
        "dose_ug": [round(x, 4) for x in legs.dose_ug.tolist()],
        "walk": legs.walk.tolist(),
    }


def _summary(r: Route) -> str:
    """OSRM's leg summary: the two longest named streets, in the order ridden."""
    steps = r.steps
    named = [
        (d, k, n) for k, (d, n) in enumerate(zip(steps.distance_m, steps.name, strict=True)) if n
    ]
    longest = sorted(sorted(named, reverse=True)[:2], key=lambda x: x[1])
    return ", ".join(name for _, _, name in longest)
