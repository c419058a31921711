"""The /v1/route contract: shapes, every profile, both forms, and problem answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import DESTINATION, ORIGIN, assert_problem, latlon
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from airpath.api import ApiSettings, create_app
from airpath.api.problems import problem_for_error
from airpath.api.route_models import PROFILES, RouteCollection
from airpath.errors import NoRouteError


@pytest.fixture(scope="module")
def route_client(helsinki_dir: Path) -> Iterator[TestClient]:
    """One app for the whole module: Hypothesis calls its test many times."""
    with TestClient(create_app(ApiSettings.create(helsinki_dir, max_field_age_s=0))) as c:
        yield c


def _get(client: TestClient, **params: object) -> Any:
    query = {"from": latlon(ORIGIN), "to": latlon(DESTINATION), **params}
    return client.get("/v1/route", params=query)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_answers_geojson_routes(client: TestClient, profile: str) -> None:
    r = client.get(
        "/v1/route",
        params={"from": latlon(ORIGIN), "to": latlon(DESTINATION), "profile": profile},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = RouteCollection.model_validate(r.json())
    assert len(body.features) == 1
    props = body.features[0].properties
    assert props.profile == profile
    assert 500 < props.distance < 2000  # the corners are ~800 m apart as the crow flies
    assert props.duration > 0
    assert props.dose_ug > 0
    assert props.mean_concentration_ugm3 > 0
    steps = props.legs[0].steps
    assert steps[0].maneuver.type == "depart"
    assert steps[-1].maneuver.type == "arrive"
    assert sum(s.distance for s in steps) == pytest.approx(props.distance, abs=1.0)
    line = body.features[0].geometry.coordinates
    assert line[0] == pytest.approx(body.waypoints[0].location, abs=1e-6)
    assert line[-1] == pytest.approx(body.waypoints[1].location, abs=1e-6)
    if profile == "shortest":
        assert props.vs_shortest.distance_pct == 0.0
    assert body.field.version == "prior"
    assert body.field.source == "prior"


def test_annotations_break_each_route_down_by_edge(client: TestClient) -> None:
    plain = _get(client, profile="least_exposure", alternatives=1)
    r = _get(client, profile="least_exposure", alternatives=1, annotations="true")
    assert r.status_code == 200, r.text
    assert "annotation" not in plain.json()["features"][0]["properties"]["legs"][0]
    body = RouteCollection.model_validate(r.json())
    for feature in body.features:
        props = feature.properties
        ann = props.legs[0].annotation
        assert ann is not None
        n = len(ann.edge_id)
        assert n >= 2
        assert len(ann.distance) == len(ann.duration) == len(ann.dose_ug) == n
        assert len(ann.concentration_ugm3) == len(ann.walk) == n
        assert sum(ann.distance) == pytest.approx(props.distance, abs=0.05 * n + 0.1)
        assert sum(ann.dose_ug) == pytest.approx(props.dose_ug, abs=5e-5 * n + 1e-3)
        assert all(c > 0 for c in ann.concentration_ugm3)
    # The same routes as without annotations.
    assert [f["geometry"] for f in r.json()["features"]] == [
        f["geometry"] for f in plain.json()["features"]
    ]


def test_post_answers_like_get(client: TestClient) -> None:
    body = {
        "from": {"lat": ORIGIN[0], "lon": ORIGIN[1]},
        "to": {"lat": DESTINATION[0], "lon": DESTINATION[1]},
        "profile": "balanced",
        "balance": 0.3,
        "alternatives": 2,
    }
    posted = client.post("/v1/route", json=body)
    got = client.get(
        "/v1/route",
        params={
            "from": latlon(ORIGIN),
            "to": latlon(DESTINATION),
            "profile": "balanced",
            "balance": 0.3,
            "alternatives": 2,
        },
    )
    assert posted.status_code == got.status_code == 200
    p, g = posted.json(), got.json()
    assert p["features"] == g["features"]
    assert p["waypoints"] == g["waypoints"]


def test_alternatives_differ_and_compare_with_shortest(client: TestClient) -> None:
    r = _get(client, profile="least_exposure", alternatives=3)
    body = RouteCollection.model_validate(r.json())
    assert 2 <= len(body.features) <= 4
    assert body.features[0].properties.profile == "least_exposure"
    lines = [tuple(map(tuple, f.geometry.coordinates)) for f in body.features]
    assert len(set(lines)) == len(lines)


def test_departure_time_and_detour_limit(client: TestClient) -> None:
    r = _get(client, profile="least_exposure", depart="2026-05-01T08:00:00+02:00")
    assert r.status_code == 200
    assert r.json()["depart"] == "2026-05-01T08:00:00+02:00"  # as asked, offset kept
    r = _get(client, profile="balanced", max_detour_pct=10)
    assert r.status_code == 200
    props = r.json()["features"][0]["properties"]
    assert props["engine"] == "flexible"
    assert props["vs_shortest"]["distance_pct"] <= 10.0 + 1e-6


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"from": "91,24.94"}, ["query", "from", "lat"]),
        ({"from": "60.17,181"}, ["query", "from", "lon"]),
        ({"from": "nan,24.94"}, ["query", "from"]),
        ({"from": "60.17;24.94"}, ["query", "from"]),
        ({"from": "60.17"}, ["query", "from"]),
        ({"to": ""}, ["query", "to"]),
        ({"alternatives": 4}, ["query", "alternatives"]),
        ({"alternatives": "two"}, ["query", "alternatives"]),
        ({"max_detour_pct": -1}, ["query", "max_detour_pct"]),
        ({"balance": 1.5}, ["query", "balance"]),
        ({"profile": "scenic"}, ["query", "profile"]),
        ({"depart": "2026-05-01T08:00:00"}, ["query", "depart"]),  # no offset
        ({"depart": "tomorrow"}, ["query", "depart"]),
        ({"bogus": "1"}, ["query", "bogus"]),
    ],
)
def test_bad_parameters_are_422_problems(
    client: TestClient, params: dict[str, object], where: list[object]
) -> None:
    body = assert_problem(_get(client, **params), 422, "invalid-request")
    assert any(e["loc"][: len(where)] == where for e in body["errors"]), body["errors"]
    assert body["instance"] == "/v1/route"


def test_missing_endpoints_and_bad_bodies_are_422(client: TestClient) -> None:
    assert_problem(client.get("/v1/route"), 422, "invalid-request")
    assert_problem(client.post("/v1/route", content=b"{not json"), 422, "invalid-request")
    assert_problem(client.post("/v1/route", json=[1, 2]), 422, "invalid-request")
    bad = {"from": {"lat": 60.17, "lon": 24.94, "alt": 3}, "to": {"lat": 60.16, "lon": 24.95}}
    assert_problem(client.post("/v1/route", json=bad), 422, "invalid-request")


def test_router_errors_map_to_problem_types(client: TestClient) -> None:
    sea = (60.10, 24.95)  # Gulf of Finland, kilometres from any street
    assert_problem(_get(client, to=latlon(sea)), 422, "outside-coverage")
    assert_problem(_get(client, to=latlon(ORIGIN)), 422, "same-endpoints")
    body = assert_problem(_get(client, pollutant="so2"), 422, "bad-option")
    assert "so2" in body["detail"]
    assert problem_for_error(NoRouteError("x")) == (404, "no-route", "No route found")


def test_unknown_path_and_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v2/route"), 404)
    r = client.delete("/v1/route")
    assert_problem(r, 405)
    assert r.headers["allow"] == "GET, POST"
    assert_problem(client.post("/v1/field"), 405)
    assert_problem(client.post("/index.html"), 404)


def test_routes_are_counted_by_profile(client: TestClient) -> None:
    _get(client, profile="fastest")
    _get(client, profile="fastest")
    text = client.get("/metrics").text
    assert 'airpath_routes_total{profile="fastest"} 2.0' in text


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(60.160, 60.183),
    lon=st.floats(24.930, 24.958),
    lat2=st.floats(60.160, 60.183),
    lon2=st.floats(24.930, 24.958),
    profile=st.sampled_from(PROFILES),
    extra=st.fixed_dictionaries(
        {},
        optional={
            "alternatives": st.integers(0, 3),
            "max_detour_pct": st.floats(0, 50),
            "balance": st.floats(0, 1),
            "pollutant": st.sampled_from(["no2", "pm25", "pm10"]),
            "depart": st.just("2026-05-01T08:00:00+02:00"),
        },
    ),
)
def test_any_request_inside_the_city_is_answered(
    route_client: TestClient,
    lat: float,
    lon: float,
    lat2: float,
    lon2: float,
    profile: str,
    extra: dict[str, object],
) -> None:
    r = route_client.get(
        "/v1/route",
        params={"from": f"{lat},{lon}", "to": f"{lat2},{lon2}", "profile": profile, **extra},
    )
    if r.status_code == 200:
        RouteCollection.model_validate(r.json())
    else:
        assert_problem(r, 422)  # a point in the harbour, or the same place twice
