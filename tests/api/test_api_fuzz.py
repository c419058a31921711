"""Fuzzing with schemathesis against the app's own OpenAPI schema, in process (ASGI).

Every operation gets a bounded number of generated requests, valid ones and ones that
break the schema; the app must never answer 5xx (``/readyz`` excepted: its 503 is
documented and means "not ready"), must answer with a documented status and content
type, and its bodies must match the documented schemas.

Schemathesis' pytest loader (``from_fixture``) does not run under pytest 9, so the
strategies of each operation are driven with Hypothesis' ``@given`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_helpers import TOKEN, AppFactory
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Per operation and mode: the whole file stays well under a minute. Set the variable for a
# deeper search (e.g. 500) before a release.
MAX_EXAMPLES = int(os.environ.get("AIRPATH_FUZZ_EXAMPLES", "25"))
OPERATIONS = [
    ("GET", "/v1/route"),
    ("POST", "/v1/route"),
    ("GET", "/v1/field"),
    ("POST", "/v1/readings"),
    ("GET", "/v1/sensors"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]

WITHOUT_INPUT = {"/v1/sensors", "/healthz", "/readyz", "/metrics"}


@pytest.fixture
def api_schema(make_app: AppFactory) -> Iterator[Any]:
    app = make_app(readings_burst=100_000, readings_rate_per_s=1000.0, max_field_features=200)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()  # schemathesis keeps started apps alive until exit otherwise


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        (method, path, mode)
        for method, path in OPERATIONS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if mode is GenerationMode.POSITIVE or path not in WITHOUT_INPUT  # nothing to break
    ],
)
def test_no_server_errors(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]
    checks = [content_type_conformance, status_code_conformance, response_schema_conformance]
    if path != "/readyz":
        checks.append(not_a_server_error)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(mode))
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=auth, checks=checks)

    fuzz()
