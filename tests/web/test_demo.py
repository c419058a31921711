"""The README's main command end to end: `airpath demo` brings the whole system up on the
embedded default city, the browser test passes against it (Debian's Chromium driving the
live map), and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import drive_map, save_screenshot
from playwright.sync_api import Browser

from airpath.demo import live_members


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


@pytest.mark.skipif(shutil.which("java") is None, reason="Java 17+ is needed for Spark")
def test_demo_serves_live_routes_and_stops_cleanly(
    tmp_path: Path, helsinki_dir: Path, browser: Browser
) -> None:
    # The network the demo would build; copied so the test does not rebuild it.
    shutil.copytree(helsinki_dir, tmp_path / "networks" / "helsinki")
    port = _free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "airpath.cli", "demo", "--workdir", str(tmp_path),
             "--port", str(port), "--speed", "10"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while "airpath is live" not in log.read_text():
                assert demo.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            base = f"http://127.0.0.1:{port}"
            route = _get(f"{base}/v1/route?from=60.1780,24.9370&to=60.1655,24.9520")
            assert route["field"]["version"].startswith("b")
            assert route["features"][0]["properties"]["dose_ug"] > 0
            assert _get(f"{base}/v1/sensors")["sensors"]
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            try:
                page = context.new_page()
                seen = drive_map(page, base, (60.1660, 24.9385), (60.1780, 24.9495),
                                 timeout_ms=60_000)  # fmt: skip
                assert seen["field_version"].startswith("b")
                routes = seen["routes"]
                assert set(routes) == {"shortest", "least_exposure", "balanced"}
                assert routes["least_exposure"]["dose_ug"] <= routes["shortest"]["dose_ug"] + 1e-3
                assert not seen["external_requests"]
                page.mouse.move(1, 1)
                print("demo screenshot:", *save_screenshot(page, tmp_path, "demo-map.png"))
            finally:
                context.close()
        finally:
            demo.send_signal(signal.SIGINT)
            code = demo.wait(timeout=90)
    assert code == 0, log.read_text()[-3000:]
    groups = json.loads(next(tmp_path.glob("demo/*/process-groups.json")).read_text())
    assert set(groups) == {"simulator", "streaming job", "API and web map"}
    assert not {name: live_members(pgid) for name, pgid in groups.items() if live_members(pgid)}
    # Each service stopped on its own terms: no traceback (a JVM gone before the job that
    # drives it leaves py4j's) and no internal error at the end of any log.
    for service_log in next(tmp_path.glob("demo/*/process-groups.json")).parent.glob("*.log"):
        text = service_log.read_text(errors="replace")
        assert "Traceback" not in text, f"{service_log.name}: {text[-3000:]}"
        assert "internal error" not in text, f"{service_log.name}: {text[-3000:]}"
