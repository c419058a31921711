"""The field store on Redis: for a cluster of router replicas fed by one streaming job.

Keys, for a store with ``prefix`` P serving network build K (see
:func:`~airpath.serving.snapshot.network_key`)::

    P:K:snap:<version>    one encoded snapshot (the .apfs bytes)
    P:K:current           the current version
    P:K:versions          list of kept versions, oldest first
    P:K:updates           pub/sub channel: the version of each new snapshot

The network key is part of every key, so a store is made for one network:
``RedisFieldStore(url, network_key=...)`` (required; a publisher and its routers derive
it from the same network directory), and publishing a snapshot for another network
raises :class:`SnapshotError`. Several networks (cities, rebuilds) share one Redis.

A publish is one MULTI/EXEC transaction, watched on the version list: SET the snapshot,
append its version, SET ``current``, PUBLISH the notice, and drop (DEL and LTRIM) the
snapshots beyond ``keep``. Readers follow ``current``; one that loses a race with
pruning re-reads it. Connection errors and timeouts are retried per
:class:`RetryPolicy` (redis-py's own retries are switched off so that the policy is the
only one), then raise :class:`StoreUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from airpath.errors import FieldStoreError, StoreUnavailableError
from airpath.serving.snapshot import FieldSnapshot, decode_snapshot, encode_snapshot
from airpath.serving.store import RetryPolicy, check_network, check_version

T = TypeVar("T")
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_READ_ATTEMPTS = 10  # re-reads of `current` when racing a prune


class RedisFieldStore:
    """Snapshots in Redis, with a pub/sub notice per publish (see module docs)."""

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        network_key: str,
        prefix: str = "airpath",
        keep: int = 3,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing is safe
        timeout_s: float = 5.0,
    ) -> None:
        """``timeout_s`` bounds connecting and each reply (a 100 MB snapshot takes well
        under a second on a local network)."""
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.network_key = network_key
        self.keep = keep
        self.retry = retry
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        kw = self._client.connection_pool.connection_kwargs
        # For messages: never the URL itself, which may carry a password.
        self._where = f"redis {kw.get('host', kw.get('path'))}:{kw.get('port', '')}/{kw['db']}"
        base = f"{prefix}:{network_key}"
        self._snap = f"{base}:snap:"
        self._current = f"{base}:current"
        self._versions = f"{base}:versions"
        self.channel = f"{base}:updates"

    # -- reading -------------------------------------------------------------------------
    def latest_version(self) -> str | None:
        v = self._call("read the current version", lambda: self._client.get(self._current))
        return None if v is None else bytes(v).decode()

    def latest(self) -> FieldSnapshot:
        for _ in range(_READ_ATTEMPTS):
            version = self.latest_version()
            if version is None:
                raise FieldStoreError(f"{self._where}: the field store holds no snapshot yet")
            data = self._read(version)
            if data is not None:
                return decode_snapshot(data)
            # pruned after we read `current`: `current` has moved on
        raise FieldStoreError(f"{self._where}: `current` kept moving; gave up reading it")

    def get(self, version: str) -> FieldSnapshot:
        data = self._read(version)
        if data is None:
            raise FieldStoreError(f"{self._where}: the field store does not hold {version}")
        return decode_snapshot(data)

    def versions(self) -> list[str]:
        raw = self._call("list versions", lambda: self._client.lrange(self._versions, 0, -1))
        return [bytes(v).decode() for v in raw]

    def listen(self) -> RedisUpdateListener:
        """Subscribe to this network's notices (one try, no retries)."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
        except _UNREACHABLE as exc:
            pubsub.close()
            raise StoreUnavailableError(f"{self._where}: cannot subscribe: {exc}") from exc
        return RedisUpdateListener(pubsub, self._where)

    def close(self) -> None:
        self._client.close()

    # -- writing -------------------------------------------------------------------------
    def publish(self, snapshot: FieldSnapshot) -> str:
        version = check_version(snapshot.version)
        check_network(self.network_key, snapshot)
        data = encode_snapshot(snapshot)

        def transaction(pipe: Any) -> None:
            # Runs again when another publisher changes the version list meanwhile, and
            # after a lost connection: a version already stored is left as it is, so a
            # retry after an EXEC that did go through changes nothing.
            if pipe.exists(self._snap + version):
                return
            kept = [bytes(v).decode() for v in pipe.lrange(self._versions, 0, -1)]
            drop = kept[: max(len(kept) - self.keep + 1, 0)]
            pipe.multi()
            pipe.set(self._snap + version, data)
            pipe.rpush(self._versions, version)
            pipe.set(self._current, version)
            pipe.publish(self.channel, version)
            if drop:
                pipe.unlink(*(self._snap + v for v in drop))  # freed off the main thread
                pipe.ltrim(self._versions, -self.keep, -1)

        self._call("publish", lambda: self._client.transaction(transaction, self._versions))
        return version

    # -- helpers -------------------------------------------------------------------------
    def _read(self, version: str) -> bytes | None:
        data = self._call(f"read {version}", lambda: self._client.get(self._snap + version))
        return None if data is None else bytes(data)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried per the policy while Redis cannot be reached."""
        failures = 0
        while True:
            try:
                return fn()
            except _UNREACHABLE as exc:
                failures += 1
                if failures >= self.retry.attempts:
                    raise StoreUnavailableError(
                        f"{self._where}: could not {what} after {failures} attempts: {exc}"
                    ) from exc
                time.sleep(self.retry.delay_s(failures))


class RedisUpdateListener:
    """Notices of new snapshots on one pub/sub channel; made by
    :meth:`RedisFieldStore.listen`."""

    def __init__(self, pubsub: Any, where: str) -> None:
        self._pubsub = pubsub
        self._where = where

    def wait(self, timeout_s: float) -> str | None:
        try:
            msg = self._pubsub.get_message(timeout=timeout_s)
        except _UNREACHABLE as exc:
            raise StoreUnavailableError(f"{self._where}: notices lost: {exc}") from exc
        if msg is None or msg.get("type") != "message":
            return None
        return bytes(msg["data"]).decode()

    def close(self) -> None:
        self._pubsub.close()
