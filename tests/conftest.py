"""Shared fixtures: the embedded Helsinki network (built once per run) and the shared data."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airpath.network.sources import EMBEDDED, build_from_sources
from airpath.network.store import Network, load_network
from servers import REDIS_SERVER, RedisServer

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # scenario helpers live beside the tests


@pytest.fixture(scope="session")
def helsinki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("networks") / "helsinki"
    build_from_sources([EMBEDDED], out)
    return out


@pytest.fixture(scope="session")
def helsinki(helsinki_dir: Path) -> Network:
    return load_network(helsinki_dir)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test's own (skips if the binary is missing)."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server not installed; .ci/run installs it with apt")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
