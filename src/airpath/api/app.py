"""The app factory: :func:`create_app` wires settings, handlers, errors and metrics.

The network and router are loaded when the app is created; the field subscriber starts
with the app's lifespan and is stopped (its thread joined, the router's background
customisation awaited) when the server shuts down, so nothing outlives the app.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.routing import Match, Mount
from starlette.types import Scope

from airpath.api import field, health, readings, route, sensors
from airpath.api.context import ApiContext, build_context, utc_now
from airpath.api.metrics import MetricsMiddleware
from airpath.api.problems import Problem, install_problem_handlers
from airpath.api.problems import __doc__ as problems_doc
from airpath.api.readings import ReadingIn
from airpath.api.settings import ApiSettings

_SHUTDOWN_WAIT_S = 30.0  # longest wait for a CCH customisation still running at shutdown
_DESCRIPTION = """Cycling routes that minimise the air pollution a rider breathes.

Routes come back as GeoJSON with OSRM-style statistics; the street-level pollution field
and the latest sensor readings are served for maps; partners send readings to
`POST /v1/readings` with a bearer token.

Every error is an RFC 9457 problem document (`application/problem+json`) whose `type` is
`urn:airpath:problem:<slug>`:
"""


def create_app(settings: ApiSettings, *, now: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """An app serving ``settings.network_dir``; ``now`` (UTC) is the clock seam for tests.

    >>> app = create_app(ApiSettings.create("networks/helsinki"))  # doctest: +SKIP
    >>> uvicorn.run(app)                                             # doctest: +SKIP
    """
    ctx = build_context(settings, now=now or utc_now)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ctx.subscriber is not None:
            await run_in_threadpool(ctx.subscriber.start)  # reads the store: blocking I/O
        ctx.started = True
        try:
            yield
        finally:
            ctx.started = False
            await run_in_threadpool(_stop, ctx)

    app = FastAPI(
        title="airpath",
        version=_version(),
        description=_DESCRIPTION + _slug_table(),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_problem_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics)
    for module in (route, field, readings, sensors, health):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    if settings.static_dir is not None and settings.static_dir.is_dir():
        # Last, so that every API path wins over a file of the same name.
        files = StaticFiles(directory=settings.static_dir, html=True)
        app.router.routes.append(_ReadOnlyMount("/", app=files, name="static"))
    return app


class _ReadOnlyMount(Mount):
    """The web map's files answer GET and HEAD only: another method on an API path then
    gets the API's 405 with its ``Allow`` header, not the file server's bare one."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") not in ("GET", "HEAD"):
            return Match.NONE, {}
        return super().matches(scope)


def _stop(ctx: ApiContext) -> None:
    if ctx.subscriber is not None:
        ctx.subscriber.stop()
    ctx.router.wait_customised(_SHUTDOWN_WAIT_S)
    if ctx.store is not None:
        ctx.store.close()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the models that only ``responses``/``openapi_extra`` name
    (the problem document, a reading), which FastAPI does not collect by itself."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=[
            {"name": "routing", "description": "Routes that minimise inhaled pollution"},
            {"name": "field", "description": "The street-level pollution field"},
            {"name": "sensors", "description": "Latest sensor readings"},
            {"name": "readings", "description": "Ingest for partner and citizen sensors"},
            {"name": "operations", "description": "Probes and metrics"},
        ],
    )
    _, extra = models_json_schema(
        [(Problem, "serialization"), (ReadingIn, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(extra["$defs"])
    return schema


def _slug_table() -> str:
    """The problem types listed in :mod:`.problems`, as a Markdown list for /docs."""
    doc = problems_doc or ""
    rows = [ln.split(None, 2) for ln in doc.splitlines() if ln[:1].isalpha() and "  " in ln]
    out = [f"- `{r[0]}` ({r[1]}): {r[2].strip()}" for r in rows if len(r) == 3 and r[1].isdigit()]
    return "\n".join(out) + "\n"


def _version() -> str:
    try:
        return importlib.metadata.version("airpath")
    except importlib.metadata.PackageNotFoundError:
        return "0"
