"""FieldSubscriber with a real Router on Helsinki: live within 1 s, refusals, outages."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airpath import PollutionField, Router
from airpath.network.store import Network
from airpath.serving import (
    FieldSnapshot,
    FieldStore,
    FieldSubscriber,
    LocalFieldStore,
    MemoryFieldStore,
    RedisFieldStore,
    RetryPolicy,
    encode_snapshot,
    network_key,
)

A = (60.1780, 24.9370)
B = (60.1655, 24.9520)
LIVE_S = 1.0  # a published snapshot must be live in the router within this
FAST = RetryPolicy(attempts=2, base_s=0.01, max_s=0.02)

Snap = Callable[..., FieldSnapshot]
Wait = Callable[..., None]


@pytest.fixture
def router(helsinki: Network) -> Router:
    return Router(helsinki)


@pytest.fixture
def key(helsinki: Network) -> str:
    return network_key(helsinki)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name == "field-subscriber"]


def _flexible_version(router: Router) -> str:
    """The field version a flexible (max_detour_pct) query actually routes on."""
    return router.route(A, B, "least_exposure", max_detour_pct=50).field_version


def _live(router: Router, version: str, wait_until: Wait) -> None:
    wait_until(lambda: router.field.version == version, LIVE_S, f"field {version} live")
    assert _flexible_version(router) == version


def test_start_loads_the_latest_and_follows(
    router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    store = MemoryFieldStore()
    store.publish(helsinki_snap("v1"))
    applied: list[str] = []
    with FieldSubscriber(
        store, router, network_key=key, on_applied=lambda s: applied.append(s.version)
    ) as sub:
        assert router.field.version == "v1"  # applied before start() returns
        st = sub.status()
        assert (st.version, st.store_reachable, st.stale, st.last_error) == (
            "v1",
            True,
            False,
            None,
        )
        assert st.freshness_s == 0.0
        assert st.applied_at is not None
        store.publish(helsinki_snap("v2", level=30.0))
        _live(router, "v2", wait_until)
        wait_until(lambda: applied == ["v1", "v2"], LIVE_S, "on_applied calls")
    router.wait_customised(5.0)
    assert router.route(A, B, "least_exposure").field_version == "v2"  # preset (CCH) too


def test_an_empty_store_leaves_the_router_on_its_field(
    router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    store = MemoryFieldStore()
    with FieldSubscriber(store, router, network_key=key) as sub:
        st = sub.status()
        assert (st.version, st.stale, st.store_reachable) == (None, True, True)
        assert router.field.version == "prior"
        store.publish(helsinki_snap("v1"))
        _live(router, "v1", wait_until)


def test_snapshots_for_another_network_or_unusable_are_refused(
    router: Router, key: str, helsinki: Network, helsinki_snap: Snap, wait_until: Wait
) -> None:
    store = MemoryFieldStore()  # a memory store does not know the router's network
    store.publish(helsinki_snap("v1", key="other-network"))
    with FieldSubscriber(store, router, network_key=key, poll_s=0.01) as sub:
        st = sub.status()
        assert st.version is None
        assert "other-network" in (st.last_error or "")
        assert router.field.version == "prior"

    store = MemoryFieldStore()
    store.publish(helsinki_snap("v1"))
    with FieldSubscriber(store, router, network_key=key, poll_s=0.01) as sub:
        no_no2 = PollutionField.create(
            "v2",
            dt.datetime.now(dt.UTC),
            {"pm10": np.ones(helsinki.n_edges)},
            n_edges=helsinki.n_edges,
        )
        now = dt.datetime.now(dt.UTC)
        store.publish(FieldSnapshot(no_no2, key, "m", now, now))
        wait_until(lambda: "refused by the router" in (sub.status().last_error or ""), LIVE_S)
        assert router.field.version == "v1"
        assert sub.status().version == "v1"
        store.publish(helsinki_snap("v3"))
        _live(router, "v3", wait_until)
        # The router switches inside apply_field, just before the subscriber notes it.
        wait_until(lambda: sub.status().version == "v3", LIVE_S)
        assert sub.status().last_error is None


def test_stale_when_the_data_is_older_than_max_age(
    router: Router, key: str, helsinki_snap: Snap
) -> None:
    store = MemoryFieldStore()
    s = helsinki_snap("v1")
    store.publish(s)
    now = [s.newest_event_time]
    sub = FieldSubscriber(store, router, network_key=key, max_age_s=60.0, clock=lambda: now[0])
    with sub:
        assert sub.status().stale is False
        now[0] = s.newest_event_time + dt.timedelta(seconds=61)
        st = sub.status()
        assert st.stale is True
        assert st.age_s == 61.0
        assert st.store_reachable


def test_local_store_snapshot_goes_live_within_a_second(
    tmp_path: Path, router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    store: FieldStore = LocalFieldStore(tmp_path / "fields")
    publisher = LocalFieldStore(tmp_path / "fields")
    with FieldSubscriber(store, router, network_key=key):
        for k in range(3):
            publisher.publish(helsinki_snap(f"v{k}", level=10.0 + k))
            _live(router, f"v{k}", wait_until)
    assert router.field.version == "v2"


def test_a_corrupt_snapshot_file_is_refused_and_the_field_kept(
    tmp_path: Path, router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    """One flipped byte in the newest file: refused with a named error, the router keeps
    routing on the field it has, and the next good snapshot goes live."""
    publisher = LocalFieldStore(tmp_path / "fields")
    snapshots = tmp_path / "fields" / "snapshots"
    with FieldSubscriber(LocalFieldStore(tmp_path / "fields"), router, network_key=key) as sub:
        publisher.publish(helsinki_snap("v1"))
        _live(router, "v1", wait_until)
        bad = bytearray(encode_snapshot(helsinki_snap("v2", level=90.0)))
        bad[len(bad) // 2] ^= 0x01
        (snapshots / ".tmp-v2").write_bytes(bytes(bad))
        (snapshots / ".tmp-v2").rename(snapshots / "000000000002-v2.apfs")
        (tmp_path / "fields" / ".tmp-CURRENT").write_text("000000000002-v2.apfs\n")
        (tmp_path / "fields" / ".tmp-CURRENT").rename(tmp_path / "fields" / "CURRENT")
        wait_until(lambda: "v2 refused" in (sub.status().last_error or ""), LIVE_S)
        assert "CRC32" in (sub.status().last_error or "")
        assert router.field.version == "v1"
        assert _flexible_version(router) == "v1"
        publisher.publish(helsinki_snap("v3"))
        _live(router, "v3", wait_until)
        # the router switches inside apply_field, the status right after it
        wait_until(lambda: sub.status().version == "v3", LIVE_S, "status of v3")
        assert sub.status().last_error is None


def test_redis_snapshots_for_another_network_are_refused(
    redis_url: str, router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    ours = RedisFieldStore(redis_url, network_key=key)
    theirs = RedisFieldStore(redis_url, network_key="another-build")
    try:
        ours.publish(helsinki_snap("v1"))
        theirs.publish(helsinki_snap("v9", key="another-build"))
        with FieldSubscriber(theirs, router, network_key=key) as sub:
            st = sub.status()
            assert st.version is None
            assert "another-build" in (st.last_error or "")
        with FieldSubscriber(ours, router, network_key=key):
            _live(router, "v1", wait_until)
        with FieldSubscriber(theirs, router, network_key=key) as sub:
            theirs.publish(helsinki_snap("v10", key="another-build"))
            wait_until(lambda: "v10" in (sub.status().last_error or ""), LIVE_S)
            assert router.field.version == "v1"
            assert _flexible_version(router) == "v1"
    finally:
        ours.close()
        theirs.close()


def test_redis_snapshot_goes_live_and_survives_an_outage(
    redis_server: Any, router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    publisher = RedisFieldStore(redis_server.url, network_key=key, retry=FAST)
    store = RedisFieldStore(redis_server.url, network_key=key, retry=FAST, timeout_s=1.0)
    sub = FieldSubscriber(
        store,
        router,
        network_key=key,
        recheck_s=30.0,  # notices alone must do it
        reconnect_base_s=0.02,
        reconnect_max_s=0.1,
    )
    try:
        with sub:
            assert sub.status().version is None
            publisher.publish(helsinki_snap("v1"))
            _live(router, "v1", wait_until)
            publisher.publish(helsinki_snap("v2", level=40.0))
            _live(router, "v2", wait_until)

            redis_server.stop()  # killed
            wait_until(lambda: not sub.status().store_reachable, 5.0, "outage noticed")
            st = sub.status()
            assert st.stale
            assert st.version == "v2"
            assert "127.0.0.1" in (st.last_error or "")
            assert _flexible_version(router) == "v2"  # still routing on the last field
            router.wait_customised(5.0)
            assert router.route(A, B, "least_exposure").field_version == "v2"

            redis_server.start()  # same port, empty (no persistence)
            wait_until(lambda: sub.status().store_reachable, 5.0, "reconnect")
            publisher.publish(helsinki_snap("v3", level=50.0))
            _live(router, "v3", wait_until)
            assert sub.status().stale is False
    finally:
        publisher.close()
        store.close()


def test_redis_subscriber_catches_up_on_what_it_missed(
    redis_server: Any, router: Router, key: str, helsinki_snap: Snap, wait_until: Wait
) -> None:
    """Published while Redis was away from the subscriber: the pointer recheck finds it."""
    publisher = RedisFieldStore(redis_server.url, network_key=key, retry=FAST)
    store = RedisFieldStore(redis_server.url, network_key=key, retry=FAST, timeout_s=1.0)
    try:
        with FieldSubscriber(store, router, network_key=key, recheck_s=0.2) as sub:
            redis_server.stop()
            wait_until(lambda: not sub.status().store_reachable, 5.0, "outage noticed")
            redis_server.start()
            publisher.publish(helsinki_snap("v1"))  # may land before the resubscribe
            _live(router, "v1", wait_until)
    finally:
        publisher.close()
        store.close()
