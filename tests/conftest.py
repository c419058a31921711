"""Shared fixtures: the embedded Helsinki network (built once per run) and the shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from airpath.network.sources import EMBEDDED, build_from_sources
from airpath.network.store import Network, load_network

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
