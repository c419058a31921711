"""Keep a running router on the newest field snapshot of a field store.

A :class:`FieldSubscriber` runs one thread. It loads the current snapshot on start, then
waits for new ones: on a store that pushes notices (Redis pub/sub) it reacts to each
notice and also re-reads the current version every ``recheck_s`` seconds, in case a
notice was lost; on other stores it polls the current version every ``poll_s`` seconds.
A new version is fetched, checked against the router's network (a snapshot for another
network is refused and the router keeps its field) and handed to
:meth:`Router.apply_field` with ``background=True``: flexible queries use it at once,
preset (CCH) queries once their metrics are customised.

When the store cannot be reached the router keeps serving its last field; the status
says ``store_reachable=False`` and ``stale=True``, and the subscriber reconnects with
exponential backoff (``reconnect_base_s`` doubling up to ``reconnect_max_s``) and catches
up with whatever is current when the store is back.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from airpath.errors import FieldError, FieldStoreError, SnapshotError, StoreUnavailableError
from airpath.routing.router import Router
from airpath.serving.snapshot import FieldSnapshot
from airpath.serving.store import FieldStore, NotifyingFieldStore, UpdateListener

log = logging.getLogger(__name__)
_LISTEN_SLICE_S = 0.2  # longest block on a notice, so that stop() is prompt


@dataclass(frozen=True)
class SubscriberStatus:
    """What a subscriber has applied and whether it is fresh. Ages in seconds.

    ``version`` is None until a snapshot from the store is applied (the router serves
    the field it started with). ``stale`` is True when the store cannot be reached or the
    applied field's data is older than ``max_age_s`` (or there is none).
    """

    version: str | None
    applied_at: dt.datetime | None
    freshness_s: float | None
    age_s: float | None
    stale: bool
    store_reachable: bool
    last_error: str | None


class FieldSubscriber:
    """Applies every new snapshot of ``store`` to ``router``, on a thread.

    >>> with FieldSubscriber(store, router, network_key=network_key(net)):  # doctest: +SKIP
    ...     serve_forever(router)
    """

    def __init__(
        self,
        store: FieldStore,
        router: Router,
        *,
        network_key: str,
        max_age_s: float = 120.0,
        poll_s: float = 0.1,
        recheck_s: float = 2.0,
        reconnect_base_s: float = 0.1,
        reconnect_max_s: float = 5.0,
        on_applied: Callable[[FieldSnapshot], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``clock`` returns the current UTC time (a seam for tests of staleness)."""
        self.store, self.router, self.network_key = store, router, network_key
        self.max_age_s, self.poll_s, self.recheck_s = max_age_s, poll_s, recheck_s
        self.reconnect_base_s, self.reconnect_max_s = reconnect_base_s, reconnect_max_s
        self.on_applied = on_applied
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot: FieldSnapshot | None = None
        self._applied_at: dt.datetime | None = None
        self._reachable = True
        self._last_error: str | None = None
        self._refused: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FieldSubscriber:
        """Apply the store's current snapshot (if any and reachable), then follow it."""
        if self._thread is not None:
            raise RuntimeError("subscriber already started")
        self._stop.clear()
        try:
            self._check()
            self._set_reachable(True)
        except StoreUnavailableError as exc:
            self._set_unreachable(exc)
        self._thread = threading.Thread(target=self._run, name="field-subscriber", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following the store and join the thread (the router keeps its field)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FieldSubscriber:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def status(self) -> SubscriberStatus:
        with self._lock:
            snap, applied_at = self._snapshot, self._applied_at
            reachable, error = self._reachable, self._last_error
        age = None if snap is None else snap.age_s(self._clock())
        return SubscriberStatus(
            version=None if snap is None else snap.version,
            applied_at=applied_at,
            freshness_s=None if snap is None else snap.freshness_s,
            age_s=age,
            stale=not reachable or age is None or age > self.max_age_s,
            store_reachable=reachable,
            last_error=error,
        )

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        listener: UpdateListener | None = None
        failures = 0
        next_check = 0.0 if not self._reachable else time.monotonic() + self.poll_s
        try:
            while not self._stop.is_set():
                try:
                    if listener is None and isinstance(self.store, NotifyingFieldStore):
                        listener = self.store.listen()
                        next_check = 0.0  # catch up with what was missed unsubscribed
                    if time.monotonic() >= next_check:
                        self._check()
                        interval = self.recheck_s if listener is not None else self.poll_s
                        next_check = time.monotonic() + interval
                    self._set_reachable(True)
                    failures = 0
                    wait_s = max(next_check - time.monotonic(), 0.0)
                    if listener is None:
                        self._stop.wait(wait_s)
                    elif listener.wait(min(wait_s, _LISTEN_SLICE_S)) is not None:
                        next_check = 0.0
                except StoreUnavailableError as exc:
                    self._set_unreachable(exc)
                    if listener is not None:
                        listener.close()
                        listener = None
                    failures += 1
                    self._stop.wait(self._backoff_s(failures))
                except Exception as exc:  # keep following the store whatever happens
                    log.exception("field subscriber: unexpected error")
                    self._set_error(f"{type(exc).__name__}: {exc}")
                    failures += 1
                    self._stop.wait(self._backoff_s(failures))
        finally:
            if listener is not None:
                listener.close()

    def _check(self) -> None:
        """Apply the store's current version if it is new (one round of polling)."""
        try:
            version = self.store.latest_version()
        except StoreUnavailableError:
            raise
        except FieldStoreError as exc:
            self._set_error(str(exc))
            return
        # The store answered: reachable from now, before a field it serves reaches the
        # router (a status read after the router's switch must not say "unreachable").
        self._set_reachable(True)
        applied = self._snapshot.version if self._snapshot is not None else None
        if version is None or version == applied or version in self._refused:
            return
        try:
            snap = self.store.get(version)
        except SnapshotError as exc:  # corrupt: do not fetch it again
            self._refuse(version, f"snapshot {version} refused: {exc}")
            return
        except StoreUnavailableError:
            raise
        except FieldStoreError as exc:  # pruned meanwhile: the next round sees the newer one
            self._set_error(str(exc))
            return
        self._apply(snap)

    def _apply(self, snap: FieldSnapshot) -> None:
        if snap.network_key != self.network_key:
            self._refuse(
                snap.version,
                f"snapshot {snap.version} refused: made for network {snap.network_key}, "
                f"the router serves network {self.network_key}",
            )
            return
        try:
            self.router.apply_field(snap.field, background=True)
        except FieldError as exc:
            self._refuse(snap.version, f"snapshot {snap.version} refused by the router: {exc}")
            return
        with self._lock:
            self._snapshot, self._applied_at = snap, self._clock()
            self._last_error = None
        log.info("field %s applied (freshness %s s)", snap.version, snap.freshness_s)
        if self.on_applied is not None:
            try:
                self.on_applied(snap)
            except Exception:
                log.exception("field subscriber: on_applied callback failed")

    # -- status bookkeeping ---------------------------------------------------------------
    def _refuse(self, version: str, message: str) -> None:
        log.warning("%s", message)
        self._refused.add(version)
        self._set_error(message)

    def _set_error(self, message: str) -> None:
        with self._lock:
            self._last_error = message

    def _set_reachable(self, reachable: bool) -> None:
        with self._lock:
            self._reachable = reachable

    def _set_unreachable(self, exc: StoreUnavailableError) -> None:
        with self._lock:
            if self._reachable:
                log.warning("field store unreachable, keeping field: %s", exc)
            self._reachable = False
            self._last_error = str(exc)

    def _backoff_s(self, failures: int) -> float:
        full = min(self.reconnect_base_s * 2.0 ** (failures - 1), self.reconnect_max_s)
        return full * random.uniform(0.5, 1.0)
