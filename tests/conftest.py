"""Shared fixtures: the embedded Helsinki network (built once per run) and the shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from airpath.network.sources import EMBEDDED, build_from_sources
from airpath.network.store import Network, load_network

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # scenario helpers live beside the tests
SHARED_DATA = TESTS.parent.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared data set at {path} (not present on this machine)")
    return path


@pytest.fixture(scope="session")
def helsinki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("networks") / "helsinki"
    build_from_sources([EMBEDDED], out)
    return out


@pytest.fixture(scope="session")
def helsinki(helsinki_dir: Path) -> Network:
    return load_network(helsinki_dir)
