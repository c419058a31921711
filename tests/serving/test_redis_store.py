"""RedisFieldStore against a real redis-server: keys, notices, outages and retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis

from airpath.errors import FieldStoreError, StoreUnavailableError
from airpath.serving import (
    FieldSnapshot,
    RedisFieldStore,
    RetryPolicy,
    decode_snapshot,
    encode_snapshot,
    redis_store,
)

FAST = RetryPolicy(attempts=3, base_s=0.02, max_s=0.05)


def test_keys_and_notices(redis_url: str, snap: Callable[..., FieldSnapshot]) -> None:
    store = RedisFieldStore(redis_url, network_key="net-a", prefix="ap", keep=2)
    raw = redis.Redis.from_url(redis_url)
    listener = store.listen()
    try:
        assert listener.wait(0.05) is None
        for v in ("v1", "v2", "v3"):
            store.publish(snap(v))
        assert raw.get("ap:net-a:current") == b"v3"
        assert raw.lrange("ap:net-a:versions", 0, -1) == [b"v2", b"v3"]
        assert sorted(raw.keys("ap:net-a:snap:*")) == [b"ap:net-a:snap:v2", b"ap:net-a:snap:v3"]
        assert decode_snapshot(raw.get("ap:net-a:snap:v3")).version == "v3"
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            v = listener.wait(0.2)
            if v is not None:
                got.append(v)
        assert got == ["v1", "v2", "v3"]
    finally:
        listener.close()
        raw.close()
        store.close()


def test_networks_share_one_redis(redis_url: str, snap: Callable[..., FieldSnapshot]) -> None:
    a = RedisFieldStore(redis_url, network_key="net-a")
    b = RedisFieldStore(redis_url, network_key="net-b")
    try:
        a.publish(snap("v1", key="net-a"))
        b.publish(snap("v9", key="net-b"))
        assert (a.versions(), b.versions()) == (["v1"], ["v9"])
    finally:
        a.close()
        b.close()


def test_publish_with_redis_down_raises_after_the_policy(
    redis_server: Any, snap: Callable[..., FieldSnapshot]
) -> None:
    store = RedisFieldStore(redis_server.url, network_key="net-a", retry=FAST, timeout_s=1.0)
    try:
        store.publish(snap("v1"))
        redis_server.stop()
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="after 3 attempts") as info:
            store.publish(snap("v2"))
        assert time.monotonic() - t0 >= 0.02 * 0.5 + 0.04 * 0.5  # two backoffs
        assert "\n" not in str(info.value)
        assert f"127.0.0.1:{redis_server.port}/0" in str(info.value)
        with pytest.raises(StoreUnavailableError):
            store.latest_version()
        with pytest.raises(StoreUnavailableError, match="subscribe"):
            store.listen()
        redis_server.start()  # empty again: no persistence
        assert store.latest_version() is None
        store.publish(snap("v3"))
        assert store.latest().version == "v3"
    finally:
        store.close()


def test_lost_notices_connection_is_reported(redis_server: Any, wait_until: Any) -> None:
    store = RedisFieldStore(redis_server.url, network_key="net-a", retry=FAST)
    listener = store.listen()
    try:
        redis_server.stop()
        lost: list[StoreUnavailableError] = []

        def waited() -> bool:
            try:
                listener.wait(0.05)
            except StoreUnavailableError as exc:
                lost.append(exc)
            return bool(lost)

        wait_until(waited, 5.0, "the listener to notice")
        assert "notices lost" in str(lost[0])
    finally:
        listener.close()
        store.close()


def test_a_password_in_the_url_never_reaches_messages(redis_server: Any) -> None:
    url = f"redis://user:s3cret@127.0.0.1:{redis_server.port}/0"
    store = RedisFieldStore(url, network_key="net-a", retry=FAST)
    try:
        redis_server.stop()
        with pytest.raises(StoreUnavailableError) as info:
            store.latest_version()
        assert "s3cret" not in str(info.value)
    finally:
        store.close()


def test_stored_bytes_are_the_encoding_read_back_in_pieces(
    redis_url: str, snap: Callable[..., FieldSnapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The big value is sent from the encoded buffer (no hiredis packing) and read back in
    GETRANGE pieces; both must give exactly the encoded bytes."""
    monkeypatch.setattr(redis_store, "READ_CHUNK", 1000)  # a dozen pieces, one short
    store = RedisFieldStore(redis_url, network_key="net-a", prefix="ap")
    raw = redis.Redis.from_url(redis_url)
    try:
        s = snap("v1", n_edges=700)
        store.publish(s)
        stored = raw.get("ap:net-a:snap:v1")
        assert stored == encode_snapshot(s)
        assert len(stored) % 1000 != 0
        got = store.latest()
        assert got.version == "v1"
        np.testing.assert_array_equal(
            got.field.concentration_ugm3["no2"],
            s.field.concentration_ugm3["no2"].astype(np.float32),  # float32 on the wire
        )
        assert bytes(store._read("v1") or b"") == stored
        assert store._read("v9") is None
    finally:
        raw.close()
        store.close()


def test_a_snapshot_changed_between_pieces_is_read_again_whole(
    redis_url: str, snap: Callable[..., FieldSnapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """WATCH makes the pieces one value: a change between two GETRANGEs (here: the key
    replaced, then deleted) restarts the read, which never returns a mix."""
    monkeypatch.setattr(redis_store, "READ_CHUNK", 500)
    store = RedisFieldStore(redis_url, network_key="net-a", prefix="ap")
    raw = redis.Redis.from_url(redis_url)
    key = "ap:net-a:snap:v1"
    other = encode_snapshot(snap("v1", level=50.0))
    change: list[Callable[[], object]] = []  # run once, after the first piece of a read
    pieces: list[int] = []
    getrange = redis.client.Pipeline.getrange

    def meddling_getrange(pipe: Any, name: str, start: int, end: int) -> Any:
        pieces.append(start)
        if start > 0 and change:
            change.pop()()
        return getrange(pipe, name, start, end)

    monkeypatch.setattr(redis.client.Pipeline, "getrange", meddling_getrange)
    try:
        store.publish(snap("v1", level=10.0))
        change.append(lambda: raw.set(key, other))
        assert store.get("v1").field.concentration_ugm3["no2"][0, 0] == 50.0  # replaced
        assert pieces.count(0) == 2  # read twice: the first read was thrown away
        change.append(lambda: raw.delete(key))
        with pytest.raises(FieldStoreError, match="does not hold v1"):
            store.get("v1")  # deleted while being read: gone, not half read
    finally:
        raw.close()
        store.close()
