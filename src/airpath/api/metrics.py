"""Prometheus metrics of one API process, on a registry of its own (never the global one,
so that two apps in one process, as in tests, do not collide).

``route`` labels are the matched path templates (``/v1/route``), ``static`` for the web
map and ``unmatched`` for anything else, so a scanner cannot blow up the label space.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds: most routes take a millisecond or two; alternatives and big fields far more.
_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """The API's metrics; ``field_age_s`` is read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "method", "status")
        self.request_duration = Histogram(
            "airpath_http_request_duration_seconds",
            "Time from request start to the last byte of the answer",
            labels,
            registry=self.registry,
            buckets=_BUCKETS_S,
        )
        self.requests = Counter(
            "airpath_http_requests", "HTTP requests answered", labels, registry=self.registry
        )
        self.routes = Counter(
            "airpath_routes", "Routes computed, by profile", ("profile",), registry=self.registry
        )
        self.readings = Counter(
            "airpath_readings",
            "Readings received on POST /v1/readings, by partner and outcome",
            ("partner", "outcome"),
            registry=self.registry,
        )
        self.field_age = Gauge(
            "airpath_field_age_seconds",
            "Age of the served pollution field's newest data (NaN when unknown)",
            registry=self.registry,
        )

    def track_field_age(self, field_age_s: Callable[[], float | None]) -> None:
        """Read the field's age from ``field_age_s`` at every scrape."""

        def read_age() -> float:
            value = field_age_s()
            return float("nan") if value is None else value

        self.field_age.set_function(read_age)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.request_duration.labels(*labels).observe(seconds)
        self.requests.labels(*labels).inc()


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, Mount):
        return "static"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task, unlike ``BaseHTTPMiddleware``) that times
    every HTTP request; an exception escaping the app counts as a 500."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(
                _route_label(scope), scope["method"], status, time.perf_counter() - start
            )
