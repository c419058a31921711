"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error answer of the API is a :class:`Problem`. Its ``type`` is
``urn:airpath:problem:<slug>`` for airpath's own problems, so clients can branch on it
without parsing text, and ``about:blank`` for plain HTTP ones (unknown path, wrong
method), where the status says it all (RFC 9457 §4.2.1). The slugs:

=====================  ======  ===================================================
slug                   status  when
=====================  ======  ===================================================
invalid-request        422     a parameter or body fails validation (``errors``)
invalid-request        400     a body that cannot even be decoded
bad-coordinates        422     NaN or out-of-range latitude/longitude
outside-coverage       422     a point too far from any rideable street
same-endpoints         422     origin and destination are the same place
bad-option             422     unknown profile or pollutant, bad option value
invalid-input          422     any other bad input
no-route               404     no rideable connection between the two points
unauthorized           401     missing or unknown bearer token
rate-limited           429     too many requests for this token (``Retry-After``)
payload-too-large      413     the body exceeds the size limit
no-valid-readings      422     a readings batch with nothing to accept
ingest-disabled        503     this server has no landing directory
landing-failed         503     readings could not be stored; nothing was accepted
not-ready              503     no fresh pollution field (``/readyz``)
unavailable            503     the field store or the sensors document cannot be read
internal               500     a bug; the detail is in the server log, not the answer
=====================  ======  ===================================================
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from airpath.errors import (
    AirpathError,
    CoordinateError,
    FieldStoreError,
    InputError,
    NoRouteError,
    OutsideCoverageError,
    ProfileError,
    SameEndpointsError,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:airpath:problem:"

# Most specific first: the first class an error is an instance of decides.
_AIRPATH_ERRORS: tuple[tuple[type[AirpathError], int, str, str], ...] = (
    (OutsideCoverageError, 422, "outside-coverage", "Point outside the network's coverage"),
    (SameEndpointsError, 422, "same-endpoints", "Origin and destination are the same"),
    (CoordinateError, 422, "bad-coordinates", "Invalid coordinates"),
    (ProfileError, 422, "bad-option", "Invalid routing option"),
    (InputError, 422, "invalid-input", "Invalid input"),
    (NoRouteError, 404, "no-route", "No route found"),
    (FieldStoreError, 503, "unavailable", "Pollution field store unavailable"),
)


class ValidationIssue(BaseModel):
    """One failed check of a request's parameters or body (where, what, which rule)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; extension members depend on the problem type."""

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="URI naming the problem type")
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(description="The HTTP status code", ge=400, le=599)
    detail: str | None = Field(None, description="What went wrong in this occurrence")
    instance: str | None = Field(None, description="The request path")
    errors: list[ValidationIssue] | None = Field(
        None, description="invalid-request: each failed check"
    )


class ProblemError(Exception):
    """Raised by handlers to answer with a problem; ``extra`` adds extension members."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **(extra or {}),
    }
    return JSONResponse(body, status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def problem_for_error(exc: AirpathError) -> tuple[int, str, str]:
    """(status, slug, title) of an airpath error raised while answering a request."""
    for cls, status, slug, title in _AIRPATH_ERRORS:
        if isinstance(exc, cls):
            return status, slug, title
    return 500, "internal", "Internal server error"


async def _on_api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        exc.title,
        exc.detail,
        slug=exc.slug,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _on_airpath_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AirpathError)
    status, slug, title = problem_for_error(exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        detail = str(exc) if status == 503 else None
        return problem_response(request, status, title, detail, slug=slug)
    return problem_response(request, status, title, str(exc), slug=slug)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [
        {
            "loc": [x if isinstance(x, int) else str(x) for x in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    first = issues[0] if issues else None
    detail = (
        f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}" if first else "invalid request"
    )
    return problem_response(
        request,
        422,
        "Invalid request",
        detail,
        slug="invalid-request",
        extra={"errors": issues},
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        title = http.HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "HTTP error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    # FastAPI's own 400 is a body it cannot decode: an invalid request like any other.
    slug = "invalid-request" if exc.status_code == 400 else None
    if slug:
        title = "Invalid request"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(request, exc.status_code, title, detail, slug=slug, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some API route serves at this path (Starlette names only the first
    matching route's, and /v1/route has a GET and a POST route). The web map's mount
    is left out: it would claim GET everywhere."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(
            r.matches(scope)[0] is Match.FULL
            for r in request.app.router.routes
            if not isinstance(r, Mount)
        ):
            allowed.append(method)
    return ", ".join(allowed)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "Internal server error", slug="internal")


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error answer of ``app`` a problem document."""
    app.add_exception_handler(ProblemError, _on_api_problem)
    app.add_exception_handler(AirpathError, _on_airpath_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem answers for ``statuses``."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        s: {
            "description": http.HTTPStatus(s).phrase,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for s in statuses
    }
