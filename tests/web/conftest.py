"""Web map fixtures: Debian's Chromium through Playwright, and the real API server.

The server is ``airpath serve`` in a subprocess on a free port, on the embedded Helsinki
network, with a local field store the tests publish snapshots into; it is stopped in
teardown. Chromium is never downloaded: without ``/usr/bin/chromium`` the tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_MISSING, launch_chromium
from playwright.sync_api import Browser, sync_playwright
from web_helpers import HOTSPOT, ApiServer, hotspot_snapshot

from airpath.network.store import Network


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(CHROMIUM_MISSING)
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def api_server(
    helsinki_dir: Path, helsinki: Network, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """The API on Helsinki, started on field ``web-1`` (a hotspot in the city centre)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(CHROMIUM_MISSING)  # no server to start for tests that cannot run
    server = ApiServer(helsinki_dir, tmp_path_factory.mktemp("web-api"))
    server.publish(hotspot_snapshot(helsinki, "web-1", centre=HOTSPOT, peak_ugm3=45.0))
    try:
        server.start("web-1")
        yield server
    finally:
        server.stop()
