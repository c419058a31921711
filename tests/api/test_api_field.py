"""GET /v1/field: street segments with the field's values, bbox, zoom, horizons, caps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from api_helpers import AppFactory, assert_problem, helsinki_snapshot
from fastapi.testclient import TestClient

from airpath.api.field import FieldCollection
from airpath.api.segments import SegmentIndex, tolerance_deg
from airpath.network.store import Network
from airpath.serving import LocalFieldStore

BBOX = (24.940, 60.165, 24.946, 60.170)


def _bbox(b: tuple[float, ...] = BBOX) -> str:
    return ",".join(str(x) for x in b)


def test_features_lie_in_the_bbox_and_carry_prior_values(client: TestClient) -> None:
    r = client.get("/v1/field", params={"bbox": _bbox(), "zoom": 18})
    assert r.status_code == 200, r.text
    body = FieldCollection.model_validate(r.json())
    assert body.features
    assert not body.truncated
    assert body.total_features == len(body.features)
    box = shapely.box(*BBOX)
    for f in body.features:
        assert shapely.LineString(f.geometry.coordinates).intersects(box)
        assert len(f.properties.concentration_ugm3) == len(body.horizons_min) == 1
        assert f.properties.concentration_ugm3[0] > 0
        assert f.properties.uncertainty_ugm3 is None  # the priors have none
    assert body.field.source == "prior"


def test_segment_shows_the_larger_direction(helsinki: Network) -> None:
    index = SegmentIndex(helsinki)
    per_edge = np.arange(helsinki.n_edges, dtype=float)[None, :]
    two_way = np.flatnonzero((index.edge_fwd >= 0) & (index.edge_bwd >= 0))[:50]
    got = index.values(per_edge, two_way)[0]
    assert np.array_equal(got, np.maximum(index.edge_fwd[two_way], index.edge_bwd[two_way]))


def test_lower_zoom_simplifies_geometry(client: TestClient) -> None:
    def points(zoom: int) -> int:
        body = client.get("/v1/field", params={"zoom": zoom}).json()
        return sum(len(f["geometry"]["coordinates"]) for f in body["features"])

    assert points(11) < points(15) < points(22)
    assert tolerance_deg(12, 60.0) == pytest.approx(2 * tolerance_deg(13, 60.0))


def test_feature_cap_keeps_the_longest_and_says_so(make_app: AppFactory) -> None:
    with TestClient(make_app(max_field_features=25)) as client:
        body = client.get("/v1/field").json()
    assert body["truncated"] is True
    assert body["limit"] == len(body["features"]) == 25
    assert body["total_features"] > 25


def test_live_field_per_horizon_with_uncertainty(
    make_app: AppFactory, helsinki: Network, tmp_path: Path
) -> None:
    store = LocalFieldStore(tmp_path / "fields")
    store.publish(helsinki_snapshot(helsinki, "live-1"))
    with TestClient(make_app(field_store=str(tmp_path / "fields"))) as client:
        every = client.get("/v1/field", params={"bbox": _bbox(), "pollutant": "pm25"}).json()
        one = client.get("/v1/field", params={"bbox": _bbox(), "horizon": 30}).json()
    assert every["field"]["version"] == "live-1"
    assert every["horizons_min"] == [0, 15, 30, 60]
    props = every["features"][0]["properties"]
    assert len(props["concentration_ugm3"]) == 4
    assert props["uncertainty_ugm3"] == [1.5] * 4
    assert one["horizons_min"] == [30]
    assert len(one["features"][0]["properties"]["concentration_ugm3"]) == 1


@pytest.mark.parametrize(
    ("params", "slug"),
    [
        ({"bbox": "24.95,60.16,24.94,60.17"}, "invalid-request"),  # west > east
        ({"bbox": "24.94,60.16,24.95"}, "invalid-request"),
        ({"bbox": "a,b,c,d"}, "invalid-request"),
        ({"zoom": 23}, "invalid-request"),
        ({"horizon": 15}, "bad-option"),  # the priors have horizon 0 only
        ({"pollutant": "so2"}, "bad-option"),
    ],
)
def test_bad_field_queries_are_422(
    client: TestClient, params: dict[str, object], slug: str
) -> None:
    assert_problem(client.get("/v1/field", params=params), 422, slug)


def test_empty_bbox_gives_no_features(client: TestClient) -> None:
    body = client.get("/v1/field", params={"bbox": "0,0,1,1"}).json()
    assert body["features"] == []
    assert body["total_features"] == 0
