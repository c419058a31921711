"""Operations: metrics names and labels, the sensors document, the static map hook."""

from __future__ import annotations

import json
import os
from pathlib import Path

from api_helpers import DESTINATION, ORIGIN, AppFactory, assert_problem, latlon
from fastapi.testclient import TestClient

from airpath.api.models import SensorsDocument

SENSORS = {
    "updated_at": "2026-05-01T08:00:00Z",
    "sensors": [
        {
            "sensor_id": "bcn:4",
            "sensor_kind": "reference",
            "lat": 60.17,
            "lon": 24.94,
            "time": "2026-05-01T08:00:00Z",
            "values_ugm3": {"no2": 31.5, "pm10": 18.0},
        }
    ],
}


def test_metrics_have_the_documented_names(client: TestClient) -> None:
    client.get("/v1/route", params={"from": latlon(ORIGIN), "to": latlon(DESTINATION)})
    client.get("/v1/route", params={"from": "x"})
    client.get("/no/such/path")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        "airpath_http_request_duration_seconds_bucket",
        "airpath_http_requests_total",
        "airpath_field_age_seconds",
        "airpath_routes_total",
    ):
        assert f"\n{name}" in text, name
    assert 'airpath_http_requests_total{method="GET",route="/v1/route",status="200"} 1.0' in text
    assert 'airpath_http_requests_total{method="GET",route="/v1/route",status="422"} 1.0' in text
    assert 'route="unmatched",status="404"' in text or 'route="static",status="404"' in text
    assert 'airpath_routes_total{profile="least_exposure"} 1.0' in text


def test_sensors_document(make_app: AppFactory, tmp_path: Path) -> None:
    path = tmp_path / "work" / "sensors.json"
    with TestClient(make_app(sensors_file=path)) as client:
        assert client.get("/v1/sensors").json() == {"updated_at": None, "sensors": []}
        path.parent.mkdir()
        path.write_text(json.dumps(SENSORS))
        body = SensorsDocument.model_validate(client.get("/v1/sensors").json())
        assert body.sensors[0].values_ugm3 == {"no2": 31.5, "pm10": 18.0}
        tmp = path.with_name(".sensors.json.tmp")  # replaced atomically, as the job does
        tmp.write_text(json.dumps({**SENSORS, "sensors": []}))
        os.replace(tmp, path)
        assert client.get("/v1/sensors").json()["sensors"] == []
        path.write_text('{"sensors": [{"sensor_id": 1}]')
        assert_problem(client.get("/v1/sensors"), 503, "unavailable")


def test_no_sensors_file_configured(client: TestClient) -> None:
    assert client.get("/v1/sensors").json() == {"updated_at": None, "sensors": []}


def test_static_map_and_docs(client: TestClient, make_app: AppFactory) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert 'data-testid="map-canvas"' in r.text  # the web map (tests/web drives it)
    # Browsers run ES modules only when served with a JavaScript type.
    assert "javascript" in client.get("/app.js").headers["content-type"]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/route", "/v1/field", "/v1/readings", "/v1/sensors"} <= set(spec["paths"])
    problem = spec["paths"]["/v1/route"]["get"]["responses"]["422"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    with TestClient(make_app(static_dir=None)) as bare:
        assert_problem(bare.get("/"), 404)
