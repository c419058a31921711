"""Field stores: where the streaming job publishes snapshots and routers find them.

:class:`FieldStore` is the seam; :class:`MemoryFieldStore` is its in-memory fake for unit
tests, :class:`LocalFieldStore` the embedded default (a directory on one machine) and
:class:`~airpath.serving.redis_store.RedisFieldStore` the cluster one, which also pushes
notices (:class:`NotifyingFieldStore`).

Rules every store keeps:

* A store serves one network build: the first snapshot fixes its ``network_key`` (or
  the constructor does), and a snapshot for another network raises
  :class:`SnapshotError`.
* Versions are the fields' versions and are unique; they become file names and keys, so
  they are 1-128 characters of ``A-Z a-z 0-9 . _ : + @ = -`` (an ISO timestamp fits).
  Publishing a version the store still holds changes nothing and returns it, so a
  replayed streaming batch (Spark re-runs a batch after a failure) is harmless.
* The store keeps the newest ``keep`` snapshots and prunes older ones, never the current.

LocalFieldStore layout::

    <directory>/STORE.json                    {"format": 1, "network_key": "..."}
    <directory>/CURRENT                       name of the current snapshot file
    <directory>/snapshots/<seq>-<version>.apfs   seq: 12 digits, one more per publish
    <directory>/.lock                         flock'ed by the writer

A snapshot is written to a temporary name in ``snapshots/``, fsynced and renamed into
place; then ``CURRENT`` is replaced the same way and the directory fsynced. Readers only
follow ``CURRENT``, so they never see a partial snapshot; a reader that loses a race with
pruning re-reads ``CURRENT``. Writers serialise on an ``fcntl`` lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from airpath.durable import write_atomic
from airpath.errors import FieldStoreError, SnapshotError
from airpath.serving.snapshot import (
    SUFFIX,
    FieldSnapshot,
    decode_snapshot,
    encode_snapshot_buffer,
)

# Versions become file names and Redis keys: keep them to a safe alphabet.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+@=-]{0,127}")
_SNAPSHOT_FILE = re.compile(r"(\d{12})-(.+)" + re.escape(SUFFIX))
_READ_ATTEMPTS = 10  # re-reads of CURRENT when racing a prune
STORE_FORMAT = 1


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for a remote store: ``attempts`` tries in all, waiting
    ``base_s``, ``2·base_s``, ... (at most ``max_s``, with up to 50 % jitter so that many
    routers do not retry in step) between them."""

    attempts: int = 5
    base_s: float = 0.1
    max_s: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.max_s < self.base_s:
            raise ValueError(f"bad retry policy {self}")

    def delay_s(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, ...)."""
        full = min(self.base_s * 2.0 ** max(failures - 1, 0), self.max_s)
        return full * random.uniform(0.5, 1.0)


class FieldStore(Protocol):
    """Versioned field snapshots for one network build."""

    def publish(self, snapshot: FieldSnapshot) -> str:
        """Store ``snapshot`` and make it current; returns its version."""
        ...

    def latest(self) -> FieldSnapshot:
        """The current snapshot; :class:`FieldStoreError` when there is none yet."""
        ...

    def latest_version(self) -> str | None:
        """The current snapshot's version, cheaply (None when the store is empty)."""
        ...

    def get(self, version: str) -> FieldSnapshot:
        """One kept snapshot by version; :class:`FieldStoreError` if it is not kept."""
        ...

    def versions(self) -> list[str]:
        """The kept versions, oldest first."""
        ...

    def close(self) -> None: ...


class UpdateListener(Protocol):
    """Notices of new snapshots, from a store that pushes them (Redis pub/sub)."""

    def wait(self, timeout_s: float) -> str | None:
        """The version in the next notice, or None after ``timeout_s`` without one.
        Raises :class:`StoreUnavailableError` when the connection is lost."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class NotifyingFieldStore(FieldStore, Protocol):
    """A field store that also pushes a notice for every publish."""

    def listen(self) -> UpdateListener:
        """Subscribe to notices (one try; :class:`StoreUnavailableError` if it fails)."""
        ...


class ScratchBuffer:
    """One byte buffer that a store encodes snapshots into (or reads them into), reused.

    A fresh 100 MB buffer per snapshot costs its page faults every time, and on a busy
    machine, when the kernel has to compact memory for huge pages, those took 200 ms in
    the field-live benchmark; a reused one is already mapped. Hold :attr:`lock` while
    using the buffer; the bytes are only good until the next use.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._buf = np.empty(0, dtype=np.uint8)

    def __call__(self, size: int) -> npt.NDArray[np.uint8]:
        """The buffer's first ``size`` bytes (it grows to fit, never shrinks)."""
        if len(self._buf) < size:
            self._buf = np.empty(0, dtype=np.uint8)  # let the old one go first
            self._buf = np.empty(size, dtype=np.uint8)
        return self._buf[:size]


def check_version(version: str) -> str:
    """``version`` if it is safe as a file name and key part, else :class:`SnapshotError`."""
    if not _VERSION.fullmatch(version):
        raise SnapshotError(
            f"field version {version!r} must be 1-128 characters of A-Z a-z 0-9 . _ : + @ = -"
        )
    return version


def check_network(store_key: str | None, snapshot: FieldSnapshot) -> None:
    """Refuse a snapshot made for another network build than the store's."""
    if store_key is not None and snapshot.network_key != store_key:
        raise SnapshotError(
            f"snapshot {snapshot.version} is for network {snapshot.network_key}, "
            f"this store serves network {store_key}"
        )


def _check_keep(keep: int) -> int:
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    return keep


class MemoryFieldStore:
    """A field store in a dict: the fake for unit tests of logic built on stores."""

    def __init__(self, *, keep: int = 5, network_key: str | None = None) -> None:
        self.keep = _check_keep(keep)
        self.network_key = network_key
        self._snapshots: dict[str, FieldSnapshot] = {}  # insertion order = publish order
        self._lock = threading.Lock()

    def publish(self, snapshot: FieldSnapshot) -> str:
        version = check_version(snapshot.version)
        with self._lock:
            check_network(self.network_key, snapshot)
            self.network_key = snapshot.network_key
            if version not in self._snapshots:
                self._snapshots[version] = snapshot
                for old in list(self._snapshots)[: -self.keep]:
                    del self._snapshots[old]
        return version

    def latest(self) -> FieldSnapshot:
        with self._lock:
            if not self._snapshots:
                raise FieldStoreError("the field store holds no snapshot yet")
            return self._snapshots[next(reversed(self._snapshots))]

    def latest_version(self) -> str | None:
        with self._lock:
            return next(reversed(self._snapshots), None)

    def get(self, version: str) -> FieldSnapshot:
        with self._lock:
            try:
                return self._snapshots[version]
            except KeyError:
                raise FieldStoreError(f"the field store does not hold version {version}") from None

    def versions(self) -> list[str]:
        with self._lock:
            return list(self._snapshots)

    def close(self) -> None:
        pass


class LocalFieldStore:
    """Snapshots in a directory on this machine, swapped atomically (see module docs)."""

    def __init__(self, directory: str | os.PathLike[str], *, keep: int = 5) -> None:
        self.directory = Path(directory)
        self.keep = _check_keep(keep)
        self._snapdir = self.directory / "snapshots"
        self._snapdir.mkdir(parents=True, exist_ok=True)
        self._scratch = ScratchBuffer()  # encoding buffer, kept between publishes
        self._read_scratch = ScratchBuffer()  # the same for reading

    # -- reading -------------------------------------------------------------------------
    @property
    def network_key(self) -> str | None:
        """The network build this store serves (None until the first publish)."""
        path = self.directory / "STORE.json"
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise FieldStoreError(f"{path}: unreadable store metadata: {exc}") from exc
        if meta.get("format") != STORE_FORMAT:
            raise FieldStoreError(f"{path}: store format {meta.get('format')!r}, want 1")
        return str(meta["network_key"])

    def latest_version(self) -> str | None:
        name = self._current_name()
        return None if name is None else _parse(name)[1]

    def latest(self) -> FieldSnapshot:
        for _ in range(_READ_ATTEMPTS):
            name = self._current_name()
            if name is None:
                raise FieldStoreError(f"{self.directory}: the field store holds no snapshot yet")
            try:
                return self._read(name)
            except FileNotFoundError:
                continue  # pruned after we read CURRENT: CURRENT has moved on
        raise FieldStoreError(f"{self.directory}: CURRENT kept moving; gave up reading it")

    def get(self, version: str) -> FieldSnapshot:
        for name in self._names():
            if _parse(name)[1] == version:
                try:
                    return self._read(name)
                except FileNotFoundError:
                    break
        raise FieldStoreError(f"{self.directory}: the field store does not hold {version}")

    def versions(self) -> list[str]:
        return [_parse(n)[1] for n in self._names()]

    def close(self) -> None:
        pass

    # -- writing -------------------------------------------------------------------------
    def publish(self, snapshot: FieldSnapshot) -> str:
        with self._scratch.lock:  # one publish at a time per store: the buffer is reused
            return self._publish(snapshot)

    def _publish(self, snapshot: FieldSnapshot) -> str:
        version = check_version(snapshot.version)
        data = encode_snapshot_buffer(snapshot, self._scratch)  # outside the lock: slow
        with self._writer_lock():
            stored = self.network_key
            check_network(stored, snapshot)
            if stored is None:
                meta = {"format": STORE_FORMAT, "network_key": snapshot.network_key}
                write_atomic(self.directory / "STORE.json", json.dumps(meta).encode())
            for d in (self.directory, self._snapdir):
                for n in os.listdir(d):
                    if n.startswith(".tmp-"):  # left by a writer that died (we hold the lock)
                        (d / n).unlink(missing_ok=True)
            kept = self._names()
            if version in (_parse(n)[1] for n in kept):
                return version
            seq = _parse(kept[-1])[0] + 1 if kept else 1
            name = f"{seq:012d}-{version}{SUFFIX}"
            write_atomic(self._snapdir / name, data)
            write_atomic(self.directory / "CURRENT", f"{name}\n".encode())
            for old in [*kept, name][: -self.keep]:
                (self._snapdir / old).unlink(missing_ok=True)
        return version

    # -- helpers -------------------------------------------------------------------------
    def _read(self, name: str) -> FieldSnapshot:
        """The snapshot in file ``name``, decoded (FileNotFoundError if it is gone)."""
        with self._read_scratch.lock:
            return decode_snapshot(_read_file(self._snapdir / name, self._read_scratch))

    def _current_name(self) -> str | None:
        try:
            name = (self.directory / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        if not _SNAPSHOT_FILE.fullmatch(name):
            raise FieldStoreError(f"{self.directory}/CURRENT names no snapshot: {name[:80]!r}")
        return name

    def _names(self) -> list[str]:
        """Complete snapshot files, oldest first (the zero-padded seq sorts as text)."""
        return sorted(n for n in os.listdir(self._snapdir) if _SNAPSHOT_FILE.fullmatch(n))

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _read_file(path: Path, alloc: Callable[[int], npt.NDArray[np.uint8]]) -> memoryview:
    """The whole file, read straight into a buffer from ``alloc(size)``."""
    with open(path, "rb", buffering=0) as fh:
        view = alloc(os.fstat(fh.fileno()).st_size).data
        got = 0
        while got < len(view):
            n = fh.readinto(view[got:])
            if not n:
                break  # shorter than it was: decoding reports the truncation
            got += n
    return view[:got]


def _parse(name: str) -> tuple[int, str]:
    m = _SNAPSHOT_FILE.fullmatch(name)
    if m is None:
        raise FieldStoreError(f"not a snapshot file name: {name!r}")
    return int(m.group(1)), m.group(2)


def open_store(location: str, network_key: str) -> FieldStore:
    """The field store at ``location``: ``redis://…`` (or ``rediss://``, ``unix://``) or a
    directory (created if missing)."""
    if location.startswith(("redis://", "rediss://", "unix://")):
        from airpath.serving.redis_store import RedisFieldStore

        return RedisFieldStore(location, network_key=network_key)
    return LocalFieldStore(location)
