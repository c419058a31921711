"""One contract for every field store: memory (the fake), local directory, real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airpath.errors import FieldStoreError, SnapshotError, StoreUnavailableError
from airpath.serving import (
    FieldSnapshot,
    FieldStore,
    LocalFieldStore,
    MemoryFieldStore,
    RedisFieldStore,
    RetryPolicy,
)

KEEP = 3


@pytest.fixture(params=["memory", "local", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FieldStore]:
    made: FieldStore
    if request.param == "memory":
        made = MemoryFieldStore(keep=KEEP)
    elif request.param == "local":
        made = LocalFieldStore(tmp_path / "fields", keep=KEEP)
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisFieldStore(url, network_key="net-a", keep=KEEP)
    try:
        yield made
    finally:
        made.close()


def test_empty_store(store: FieldStore) -> None:
    assert store.latest_version() is None
    assert store.versions() == []
    with pytest.raises(FieldStoreError, match="no snapshot"):
        store.latest()
    with pytest.raises(FieldStoreError):
        store.get("v1")


def test_publish_latest_get_and_order(
    store: FieldStore, snap: Callable[..., FieldSnapshot]
) -> None:
    assert store.publish(snap("v1", level=1.0)) == "v1"
    assert store.publish(snap("v2", level=2.0)) == "v2"
    assert store.latest_version() == "v2"
    latest = store.latest()
    assert latest.version == "v2"
    assert latest.field.concentration_ugm3["no2"][0, 0] == 2.0
    assert latest.batch_id == 7
    assert latest.stats == {"readings": 12.0}
    assert store.get("v1").field.concentration_ugm3["no2"][0, 0] == 1.0
    assert store.versions() == ["v1", "v2"]


def test_prunes_to_keep_oldest_first(store: FieldStore, snap: Callable[..., FieldSnapshot]) -> None:
    for k in range(KEEP + 3):
        store.publish(snap(f"v{k}"))
    kept = [f"v{k}" for k in range(3, KEEP + 3)]
    assert store.versions() == kept
    assert store.latest_version() == kept[-1]
    with pytest.raises(FieldStoreError, match="v0"):
        store.get("v0")
    assert store.get(kept[0]).version == kept[0]


def test_republishing_a_version_changes_nothing(
    store: FieldStore, snap: Callable[..., FieldSnapshot]
) -> None:
    store.publish(snap("v1", level=1.0))
    store.publish(snap("v2", level=2.0))
    assert store.publish(snap("v1", level=9.0)) == "v1"  # a replayed batch
    assert store.versions() == ["v1", "v2"]
    assert store.latest_version() == "v2"
    assert store.get("v1").field.concentration_ugm3["no2"][0, 0] == 1.0


def test_refuses_another_network(store: FieldStore, snap: Callable[..., FieldSnapshot]) -> None:
    store.publish(snap("v1", key="net-a"))
    with pytest.raises(SnapshotError, match="net-b"):
        store.publish(snap("v2", key="net-b"))
    assert store.versions() == ["v1"]


def test_refuses_unsafe_versions(store: FieldStore, snap: Callable[..., FieldSnapshot]) -> None:
    for bad in ["", "../../etc", "a b", "x" * 200]:
        with pytest.raises(SnapshotError, match="field version"):
            store.publish(snap(bad))
    assert store.publish(snap("2026-05-01T08:00:00+00:00")) == "2026-05-01T08:00:00+00:00"


def test_memory_store_keeps_the_objects(snap: Callable[..., FieldSnapshot]) -> None:
    """The fake hands back the very snapshot published (no encoding), and keep applies."""
    make_snapshot = snap
    store = MemoryFieldStore(keep=1, network_key="net-a")
    s = make_snapshot("v1")
    store.publish(s)
    assert store.latest() is s
    store.publish(make_snapshot("v2"))
    assert store.versions() == ["v2"]
    with pytest.raises(ValueError, match="keep"):
        MemoryFieldStore(keep=0)


def test_retry_policy_delays_grow_and_cap() -> None:
    policy = RetryPolicy(attempts=5, base_s=0.1, max_s=0.35)
    delays = [policy.delay_s(k) for k in range(1, 6)]
    for k, d in enumerate(delays, start=1):
        full = min(0.1 * 2 ** (k - 1), 0.35)
        assert full / 2 <= d <= full
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(attempts=0)
    assert issubclass(StoreUnavailableError, FieldStoreError)
