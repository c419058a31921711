"""The live field: snapshots published to a field store reach /v1/route, and /readyz and
the field age follow their freshness."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from api_helpers import DESTINATION, ORIGIN, AppFactory, assert_problem, helsinki_snapshot, latlon
from fastapi.testclient import TestClient

from airpath.network.store import Network
from airpath.serving import LocalFieldStore, RedisFieldStore, network_key
from servers import RedisServer, wait_until

ROUTE = {"from": latlon(ORIGIN), "to": latlon(DESTINATION), "profile": "least_exposure"}


def _field(client: TestClient, **params: object) -> dict[str, object]:
    r = client.get("/v1/route", params={**ROUTE, **params})
    assert r.status_code == 200, r.text
    field: dict[str, object] = r.json()["field"]
    return field


def test_published_fields_reach_routes(
    make_app: AppFactory, helsinki: Network, tmp_path: Path
) -> None:
    store = LocalFieldStore(tmp_path / "fields")
    store.publish(helsinki_snapshot(helsinki, "v-1", level=20.0))
    app = make_app(field_store=str(tmp_path / "fields"))
    with TestClient(app) as client:
        # Applied on start-up: a flexible query (detour limit) uses it at once...
        assert _field(client, max_detour_pct=20)["version"] == "v-1"
        # ...and preset queries once its hierarchy metrics are customised.
        app.state.ctx.router.wait_customised()
        first = _field(client)
        assert first["version"] == "v-1"
        assert first["source"] == "store"
        assert first["model_version"] == "test-model-2"
        assert first["stale"] is False
        store.publish(helsinki_snapshot(helsinki, "v-2", level=40.0))
        wait_until(lambda: _field(client)["version"] == "v-2", 10.0, "v-2 in /v1/route")
        body = client.get("/v1/route", params=ROUTE).json()
        assert body["features"][0]["properties"]["mean_concentration_ugm3"] > 40.0


def test_routes_keep_answering_while_fields_change(
    make_app: AppFactory, helsinki: Network, tmp_path: Path
) -> None:
    store = LocalFieldStore(tmp_path / "fields")
    store.publish(helsinki_snapshot(helsinki, "w-0"))
    with TestClient(make_app(field_store=str(tmp_path / "fields"))) as client:
        done = threading.Event()

        def publish() -> None:
            for k in range(1, 6):
                store.publish(helsinki_snapshot(helsinki, f"w-{k}", level=20.0 + k))
            done.set()

        publisher = threading.Thread(target=publish)
        publisher.start()
        seen = set()
        while not done.is_set() or len(seen) < 2:
            r = client.get("/v1/route", params=ROUTE)
            assert r.status_code == 200, r.text
            seen.add(r.json()["field"]["version"])
        publisher.join()
        wait_until(lambda: _field(client)["version"] == "w-5", 10.0, "the last field")


def test_readyz_follows_the_field(make_app: AppFactory, helsinki: Network, tmp_path: Path) -> None:
    t0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    now = [t0 + dt.timedelta(seconds=30)]
    store = LocalFieldStore(tmp_path / "fields")
    app = make_app(now=lambda: now[0], field_store=str(tmp_path / "fields"), max_field_age_s=120.0)
    client = TestClient(app)
    assert_problem(client.get("/readyz"), 503, "not-ready")  # lifespan not started
    with client:
        body = assert_problem(client.get("/readyz"), 503, "not-ready")  # priors only
        assert body["field"]["source"] == "prior"
        store.publish(helsinki_snapshot(helsinki, "r-1", newest=t0))
        wait_until(lambda: client.get("/readyz").status_code == 200, 10.0, "ready")
        ready = client.get("/readyz").json()
        assert ready["field"]["version"] == "r-1"
        assert ready["field"]["age_s"] == 30.0
        assert ready["edges"] == helsinki.n_edges
        assert "airpath_field_age_seconds 30.0" in client.get("/metrics").text
        now[0] = t0 + dt.timedelta(minutes=5)
        body = assert_problem(client.get("/readyz"), 503, "not-ready")
        assert "300 s old" in body["detail"]
        assert _field(client)["stale"] is True
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_without_a_freshness_limit(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["field"]["source"] == "prior"
    assert body["field"]["max_age_s"] is None


def test_shutdown_leaves_no_threads(
    make_app: AppFactory, helsinki: Network, tmp_path: Path
) -> None:
    before = set(threading.enumerate())
    store = LocalFieldStore(tmp_path / "fields")
    store.publish(helsinki_snapshot(helsinki, "t-1"))
    with TestClient(make_app(field_store=str(tmp_path / "fields"))) as client:
        assert client.get("/healthz").status_code == 200
        store.publish(helsinki_snapshot(helsinki, "t-2"))
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not [t.name for t in left if t.name in ("field-subscriber", "cch-customise")]


def test_fields_from_redis_reach_routes(
    make_app: AppFactory, helsinki: Network, redis_server: RedisServer
) -> None:
    store = RedisFieldStore(redis_server.url, network_key=network_key(helsinki))
    try:
        store.publish(helsinki_snapshot(helsinki, "redis-1"))
        app = make_app(field_store=redis_server.url)
        with TestClient(app) as client:
            assert _field(client, max_detour_pct=20)["version"] == "redis-1"
            store.publish(helsinki_snapshot(helsinki, "redis-2"))
            wait_until(lambda: _field(client)["version"] == "redis-2", 10.0, "redis-2")
            assert client.get("/readyz").json()["field"]["store_reachable"] is True
    finally:
        store.close()
