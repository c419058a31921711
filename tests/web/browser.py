"""Drive the web map in a real Chromium: load it, set two points, read the three routes.

Reusable against any running airpath API (this suite's server, or the full demo): the page
is found by its ``data-testid`` attributes and driven by coordinates through
``window.airpathMap.project(lat, lon)``. Every wait is on a condition with a deadline,
never a sleep. Chromium is Debian's (:data:`CHROMIUM`); Playwright never downloads one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_MISSING = "chromium not installed; .ci/run installs it with apt"
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_ENV = "AIRPATH_SCREENSHOT_DIR"
PROFILES = ("shortest", "balanced", "least_exposure")

_ROW = '[data-testid="route-row"]'
_READ_ROWS = """rows => rows.map(r => ({
    profile: r.dataset.profile,
    state: r.dataset.state,
    distance_m: Number(r.dataset.distanceM),
    duration_s: Number(r.dataset.durationS),
    dose_ug: Number(r.dataset.doseUg),
    dose_pct: Number(r.dataset.dosePct),
    distance_pct: Number(r.dataset.distancePct),
    text: r.innerText,
}))"""


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Debian Chromium; the caller skips with :data:`CHROMIUM_MISSING` first."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)


def watch_page(page: Page, base_url: str) -> dict[str, list[str]]:
    """Start collecting the page's console errors, uncaught exceptions and requests to any
    other host (the map must work offline); the lists keep filling as the page runs."""
    seen: dict[str, list[str]] = {"console_errors": [], "external_requests": []}
    host = urlsplit(base_url).netloc

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            seen["console_errors"].append(msg.text)

    def on_request(request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != host:
            seen["external_requests"].append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen["console_errors"].append(str(exc)))
    page.on("request", on_request)
    return seen


def click_point(page: Page, lat: float, lon: float) -> None:
    """Click the map canvas where (lat, lon) is drawn."""
    xy = page.evaluate("([lat, lon]) => window.airpathMap.project(lat, lon)", [lat, lon])
    box = page.get_by_test_id("map-canvas").bounding_box()
    assert box is not None, "the map canvas is not displayed"
    inside = 0 <= xy["x"] <= box["width"] and 0 <= xy["y"] <= box["height"]
    assert inside, f"({lat}, {lon}) is outside the map view: {xy} in {box}"
    page.get_by_test_id("map-canvas").click(position={"x": xy["x"], "y": xy["y"]})


def read_routes(page: Page) -> dict[str, dict[str, Any]]:
    """The route panel's rows by profile, with their numbers (from ``data-`` attributes)."""
    rows: list[dict[str, Any]] = page.eval_on_selector_all(_ROW, _READ_ROWS)
    return {row.pop("profile"): row for row in rows}


def read_badge(page: Page) -> dict[str, Any]:
    badge = page.get_by_test_id("freshness-badge")
    age = badge.get_attribute("data-age-s")
    return {
        "level": badge.get_attribute("data-level"),
        "version": badge.get_attribute("data-version"),
        "age_s": float(age) if age else None,
        "text": badge.inner_text(),
    }


def drive_map(
    page: Page,
    base_url: str,
    origin: tuple[float, float],
    destination: tuple[float, float],
    *,
    timeout_ms: float = 20_000,
) -> dict[str, Any]:
    """Open the map, wait for the streets, click ``origin`` then ``destination`` (lat, lon)
    and wait for the three routes; what the page showed, as a dict:

    ``segments_drawn``, ``field_version`` (of the drawn streets), ``badge`` (level,
    version, age_s, text), ``markers`` (state of each), ``routes`` (profile → distance_m,
    duration_s, dose_ug, dose_pct, distance_pct, text), ``routes_field_version``, and the
    live lists ``console_errors`` and ``external_requests``.
    """
    seen = watch_page(page, base_url)
    page.goto(base_url.rstrip("/") + "/", timeout=timeout_ms)
    canvas = page.get_by_test_id("map-canvas")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=map-canvas]')"
        ".dataset.segmentsDrawn) > 0",
        timeout=timeout_ms,
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=freshness-badge]').dataset.version",
        timeout=timeout_ms,
    )
    click_point(page, *origin)
    page.wait_for_selector('[data-testid="origin-marker"][data-state="set"]', timeout=timeout_ms)
    click_point(page, *destination)
    page.wait_for_selector(
        '[data-testid="destination-marker"][data-state="set"]', timeout=timeout_ms
    )
    page.wait_for_function(
        f"""() => document.querySelector('[data-testid=route-panel]').dataset.state === 'ready'
            && document.querySelectorAll('{_ROW}[data-state]').length === {len(PROFILES)}""",
        timeout=timeout_ms,
    )
    panel = page.get_by_test_id("route-panel")
    markers = {
        name: page.get_by_test_id(f"{name}-marker").get_attribute("data-state")
        for name in ("origin", "destination")
    }
    return {
        "segments_drawn": int(canvas.get_attribute("data-segments-drawn") or 0),
        "field_version": canvas.get_attribute("data-field-version"),
        "badge": read_badge(page),
        "markers": markers,
        "routes": read_routes(page),
        "routes_field_version": panel.get_attribute("data-field-version"),
        **seen,
    }


def wait_for_new_field(page: Page, old_version: str, *, timeout_ms: float = 20_000) -> str:
    """Wait until the badge, the drawn streets and (if shown) the routes are on a field
    other than ``old_version``; that version."""
    page.wait_for_function(
        """old => {
            const q = id => document.querySelector(`[data-testid=${id}]`).dataset;
            const badge = q('freshness-badge').version;
            const panel = q('route-panel');
            return badge && badge !== old && q('map-canvas').fieldVersion === badge
                && (panel.state === 'idle' || (panel.state === 'ready'
                    && panel.fieldVersion === badge));
        }""",
        arg=old_version,
        timeout=timeout_ms,
    )
    version = page.get_by_test_id("freshness-badge").get_attribute("data-version")
    assert version is not None
    return version


def save_screenshot(page: Page, out_dir: Path, name: str = "web-map.png") -> list[Path]:
    """Screenshot the page into ``out_dir`` and, if set, ``$AIRPATH_SCREENSHOT_DIR``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    page.screenshot(path=str(path))
    paths = [path]
    extra = os.environ.get(SCREENSHOT_ENV)
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        paths.append(Path(shutil.copy2(path, Path(extra) / name)))
    return paths
