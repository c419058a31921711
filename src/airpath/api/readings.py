"""``POST /v1/readings``: sensor readings from citizen and partner sensors.

In order: bearer token (401), the token's rate limit (429 with ``Retry-After``), the body
size limit (413, checked on ``Content-Length`` and again while reading, for chunked
bodies), then per-reading validation and durable landing (see :mod:`.ingest`). The body
is one reading object, a JSON array of them, or JSON lines. ``202 Accepted`` means the
accepted readings are on disk; a batch with none to accept is a 422 carrying the same
receipt, so a sender sees every reason either way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, Field

from airpath.api.auth import retry_after_header
from airpath.api.context import ApiContext, get_context
from airpath.api.ingest import Batch, check_batch, land
from airpath.api.problems import ProblemError, problem_responses
from airpath.sensors.landing import payload_lines

router = APIRouter(tags=["readings"])
Ctx = Annotated[ApiContext, Depends(get_context)]
bearer = HTTPBearer(auto_error=False, description="A partner token (ask the operator)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class ReadingIn(BaseModel):
    """One reading as sent (the streaming job's JSON form of ``Reading``)."""

    sensor_id: str = Field(min_length=1)
    sensor_kind: Literal["reference", "low_cost", "mobile"]
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    time: AwareDatetime = Field(description="Measurement time with offset, within 24 h")
    pollutant: Literal["no2", "pm25", "pm10", "o3"]
    value: float
    unit: Literal["ug/m3", "µg/m³", "ppb", "mg/m3"]
    speed_mps: float | None = Field(None, description="Mobile sensors")
    heading_deg: float | None = Field(None, description="Mobile sensors, from north")


class Rejection(BaseModel):
    index: int = Field(description="Position of the reading in the request, from 0")
    reason: str = Field(description="A RejectReason: malformed, stale_timestamp, ...")
    message: str


class ReadingsReceipt(BaseModel):
    partner: str
    received: int
    accepted: int
    rejected: int
    reasons: dict[str, int] = Field(description="Rejections per reason")
    rejections: list[Rejection]
    dead_lettered: bool = Field(description="Whether the rejections were stored server-side")


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ReadingIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/ReadingIn"}},
                    ]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v1/readings",
    status_code=202,
    response_model=ReadingsReceipt,
    responses=problem_responses(401, 413, 422, 429, 503),
    operation_id="post_readings",
    summary="Send sensor readings (partners)",
    description=__doc__.split("\n\n")[1].replace("\n", " "),
    openapi_extra=_BODY,
)
async def post_readings(request: Request, ctx: Ctx, credentials: Credentials) -> Response:
    landing = ctx.landing
    if landing is None:
        raise ProblemError(
            503, "ingest-disabled", "Ingest disabled", "this server lands no readings"
        )
    token = credentials.credentials if credentials is not None else ""
    partner = ctx.auth.partner(token) if token else None
    if partner is None:
        challenge = 'Bearer realm="airpath"' + (', error="invalid_token"' if token else "")
        raise ProblemError(
            401,
            "unauthorized",
            "Unauthorized",
            "unknown bearer token" if token else "send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": challenge},
        )
    wait_s = ctx.limiter.take(token)
    if wait_s > 0:
        raise ProblemError(
            429,
            "rate-limited",
            "Too many requests",
            f"at most {ctx.settings.readings_rate_per_s:g} requests/s per token "
            f"(bursts of {ctx.settings.readings_burst})",
            headers={"Retry-After": retry_after_header(wait_s)},
        )
    body = await _read_limited(request, ctx.settings.max_body_bytes)
    lines = payload_lines(body, source=f"http:{partner}")
    batch = await run_in_threadpool(
        check_batch, lines, now=ctx.now(), area=ctx.area, source=f"http:{partner}"
    )
    try:
        stored = await run_in_threadpool(land, batch, landing, ctx.dead_letters)
    except OSError as exc:
        raise ProblemError(
            503,
            "landing-failed",
            "Readings not stored",
            f"nothing was accepted, send them again later ({type(exc).__name__})",
            headers={"Retry-After": "5"},
        ) from exc
    receipt = _receipt(partner, batch, stored)
    ctx.metrics.readings.labels(partner, "accepted").inc(len(batch.accepted))
    ctx.metrics.readings.labels(partner, "rejected").inc(len(batch.rejected))
    if not batch.accepted:
        raise ProblemError(
            422,
            "no-valid-readings",
            "No valid readings",
            "none of the readings sent could be accepted; see rejections",
            extra=receipt,
        )
    return JSONResponse(receipt, status_code=202)


async def _read_limited(request: Request, limit: int) -> bytes:
    too_big = ProblemError(
        413, "payload-too-large", "Payload too large", f"bodies are limited to {limit} bytes"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _receipt(partner: str, batch: Batch, stored: bool) -> dict[str, Any]:
    return {
        "partner": partner,
        "received": batch.received,
        "accepted": len(batch.accepted),
        "rejected": len(batch.rejected),
        "reasons": batch.reasons,
        "rejections": [
            {"index": i, "reason": r.reason.value, "message": r.message} for i, r in batch.rejected
        ],
        "dead_lettered": stored,
    }
