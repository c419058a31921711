"""Serving fixtures: a real redis-server per test, snapshot factories, deadline polling.

Redis is never mocked here: the Redis store and the subscriber are tested against a
``redis-server`` started on a free port (no persistence) and stopped in teardown. A test
can ``stop()`` and ``start()`` the same server on the same port to play an outage.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import redis

from airpath import PollutionField
from airpath.network.store import Network
from airpath.serving import FieldSnapshot, network_key

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
T0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what or predicate}")
        time.sleep(0.01)


class RedisServer:
    """One redis-server process on a fixed port; restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--daemonize",
                "no",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10.0
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                if self.proc.poll() is not None:
                    tail = (self.dir / "redis.log").read_text()[-500:]
                    self.stop()
                    pytest.fail(f"redis-server exited at start: {tail}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        pytest.fail("redis-server did not answer PING within 10 s")
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, kill: bool = True) -> None:
        """Kill (default, like a crash) or terminate the server and wait for it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server not installed; .ci/run installs it with apt")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def make_snapshot(
    version: str,
    *,
    key: str = "net-a",
    n_edges: int = 20,
    pollutants: tuple[str, ...] = ("no2", "pm25"),
    horizons_min: tuple[float, ...] = (0.0, 15.0),
    level: float = 10.0,
    newest: dt.datetime | None = T0,
    published_at: dt.datetime | None = None,
) -> FieldSnapshot:
    """A small snapshot whose values are ``level`` plus a ramp over the edges."""
    ramp = np.linspace(0.0, 1.0, n_edges)
    conc = {p: np.tile(level + k + ramp, (len(horizons_min), 1)) for k, p in enumerate(pollutants)}
    unc = {p: np.full((len(horizons_min), n_edges), 0.5) for p in pollutants}
    fld = PollutionField.create(
        version, T0, conc, n_edges=n_edges, horizons_min=horizons_min, uncertainty_ugm3=unc
    )
    published = published_at or (newest or T0) + dt.timedelta(seconds=30)
    return FieldSnapshot(
        fld, key, "test-model-1", newest, published, batch_id=7, stats={"readings": 12.0}
    )


@pytest.fixture
def snap() -> Callable[..., FieldSnapshot]:
    return make_snapshot


@pytest.fixture
def helsinki_snap(helsinki: Network) -> Callable[..., FieldSnapshot]:
    """Snapshots for the Helsinki network, every pollutant, horizons 0/15/30/60 min.
    ``key`` overrides the network key (to play a snapshot for another network)."""

    def make(version: str, level: float = 20.0, key: str | None = None) -> FieldSnapshot:
        now = dt.datetime.now(dt.UTC)
        n = helsinki.n_edges
        conc = {p: np.full((4, n), level + k) for k, p in enumerate(helsinki.pollutants)}
        fld = PollutionField.create(version, now, conc, n_edges=n, horizons_min=(0, 15, 30, 60))
        return FieldSnapshot(fld, key or network_key(helsinki), "test-model-1", now, now)

    return make


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., None]:
    return wait_until
