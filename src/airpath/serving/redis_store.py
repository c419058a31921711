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
pruning re-reads it.

Snapshots are large (96 MB for 1M edges), so they travel without extra copies. The
client packs commands with redis-py's pure-Python packer, which sends a big value straight
from the encoded buffer (hiredis's packer copies it into one more 96 MB string). A reader
fetches a snapshot in :data:`READ_CHUNK` pieces (GETRANGE, read from the socket 256 KB at
a time rather than 32 KB) into one array, WATCHing the key so that all pieces come from
one value (a snapshot pruned meanwhile reads as gone, never as a mix). On a 96 MB
snapshot over loopback this took SET from 460 to 110 ms and the read from 280 to 60 ms.

Connection errors and timeouts are retried per :class:`RetryPolicy` (redis-py's own
retries are switched off so that the policy is the only one), then raise
:class:`StoreUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import redis
from redis.backoff import NoBackoff
from redis.connection import PythonRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from airpath.errors import FieldStoreError, StoreUnavailableError
from airpath.serving.snapshot import FieldSnapshot, decode_snapshot, encode_snapshot_buffer
from airpath.serving.store import RetryPolicy, ScratchBuffer, check_network, check_version

T = TypeVar("T")
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_READ_ATTEMPTS = 10  # re-reads of `current` when racing a prune
READ_CHUNK = 4 << 20  # bytes per GETRANGE when reading a snapshot
_SOCKET_READ = 256 << 10  # bytes per socket read (redis-py's default is 32 KB)
_BUFFER_CUTOFF = 6000  # redis-py's: arguments longer than this are sent on their own


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
        options: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "retry": Retry(NoBackoff(), 0),
            "socket_read_size": _SOCKET_READ,
        }
        probe = redis.Redis.from_url(url, **options)  # connects to nothing: for its encoder
        packer = PythonRespSerializer(_BUFFER_CUTOFF, probe.get_encoder().encode)
        probe.close()
        self._client: Any = redis.Redis.from_url(url, command_packer=packer, **options)
        kw = self._client.connection_pool.connection_kwargs
        # For messages: never the URL itself, which may carry a password.
        self._where = f"redis {kw.get('host', kw.get('path'))}:{kw.get('port', '')}/{kw['db']}"
        base = f"{prefix}:{network_key}"
        self._snap = f"{base}:snap:"
        self._current = f"{base}:current"
        self._versions = f"{base}:versions"
        self.channel = f"{base}:updates"
        self._scratch = ScratchBuffer()  # encoding buffer, kept between publishes
        self._read_scratch = ScratchBuffer()  # the same for reading

    # -- reading -------------------------------------------------------------------------
    def latest_version(self) -> str | None:
        v = self._call("read the current version", lambda: self._client.get(self._current))
        return None if v is None else bytes(v).decode()

    def latest(self) -> FieldSnapshot:
        for _ in range(_READ_ATTEMPTS):
            version = self.latest_version()
            if version is None:
                raise FieldStoreError(f"{self._where}: the field store holds no snapshot yet")
            snap = self._fetch(version)
            if snap is not None:
                return snap
            # pruned after we read `current`: `current` has moved on
        raise FieldStoreError(f"{self._where}: `current` kept moving; gave up reading it")

    def get(self, version: str) -> FieldSnapshot:
        snap = self._fetch(version)
        if snap is None:
            raise FieldStoreError(f"{self._where}: the field store does not hold {version}")
        return snap

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
        with self._scratch.lock:  # one publish at a time per store: the buffer is reused
            return self._publish(snapshot)

    def _publish(self, snapshot: FieldSnapshot) -> str:
        version = check_version(snapshot.version)
        check_network(self.network_key, snapshot)
        data = encode_snapshot_buffer(snapshot, self._scratch)

        def transaction(pipe: Any) -> None:
            # Runs again when another publisher changes the version list meanwhile, and
            # after a lost connection: a version already stored is left as it is, so a
            # retry after an EXEC that did go through changes nothing.
            if pipe.exists(self._snap + version):
                return
            kept = [bytes(v).decode() for v in pipe.lrange(self._versions, 0, -1)]
            drop = kept[: max(len(kept) - self.keep + 1, 0)]
            pipe.multi()
            pipe.set(self._snap + version, data)  # sent straight from the buffer
            pipe.rpush(self._versions, version)
            pipe.set(self._current, version)
            pipe.publish(self.channel, version)
            if drop:
                pipe.unlink(*(self._snap + v for v in drop))  # freed off the main thread
                pipe.ltrim(self._versions, -self.keep, -1)

        self._call("publish", lambda: self._client.transaction(transaction, self._versions))
        return version

    # -- helpers -------------------------------------------------------------------------
    def _fetch(self, version: str) -> FieldSnapshot | None:
        """Snapshot ``version``, decoded (None if it is not stored)."""
        with self._read_scratch.lock:
            data = self._read(version, self._read_scratch)
            return None if data is None else decode_snapshot(data)

    def _read(
        self, version: str, alloc: Callable[[int], npt.NDArray[np.uint8]] | None = None
    ) -> memoryview | None:
        """The encoded snapshot ``version`` (None if it is not stored), in a buffer from
        ``alloc(size)`` (a fresh one by default)."""
        key = self._snap + version

        def read(pipe: Any) -> memoryview | None:
            # Under WATCH: if the key changes between the pieces, EXEC fails and
            # `transaction` calls this again.
            size = int(pipe.strlen(key))
            buf = alloc(size) if alloc is not None else np.empty(size, dtype=np.uint8)
            got = 0
            while got < size:
                piece = pipe.getrange(key, got, min(got + READ_CHUNK, size) - 1)
                if not piece:
                    break  # deleted meanwhile: EXEC fails, or the key is gone
                buf[got : got + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
                got += len(piece)
            pipe.multi()
            return buf.data[:got] if got else None

        return self._call(
            f"read {version}",
            lambda: self._client.transaction(read, key, value_from_callable=True),
        )

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
