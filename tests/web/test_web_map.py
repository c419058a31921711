"""The web map in a real browser: Debian's Chromium, driven by Playwright, against the
real API server on Helsinki with a live field store.

The page must draw the street network coloured by the field, route between two clicked
points with three profiles, follow a newly published field without a reload, and show
the API's problem details when a request fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import (
    PROFILES,
    drive_map,
    read_badge,
    read_routes,
    save_screenshot,
    wait_for_new_field,
    watch_page,
)
from playwright.sync_api import Browser, Page
from web_helpers import HOTSPOT, ApiServer, hotspot_snapshot

from airpath.network.store import Network

# Two points in central Helsinki about 1.5 km apart, either side of the hotspot.
ORIGIN = (60.1660, 24.9385)
DESTINATION = (60.1780, 24.9495)
TIMEOUT_MS = 20_000


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/Helsinki"
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def test_map_routes_and_follows_the_live_field(
    page: Page, api_server: ApiServer, helsinki: Network, tmp_path: Path
) -> None:
    seen = drive_map(page, api_server.url, ORIGIN, DESTINATION, timeout_ms=TIMEOUT_MS)

    segments = int(helsinki.manifest["counts"]["segments"])
    assert seen["segments_drawn"] > segments // 2, seen["segments_drawn"]
    assert seen["field_version"] == "web-1"
    assert seen["badge"]["version"] == "web-1"
    assert seen["badge"]["level"] == "fresh", seen["badge"]
    assert seen["markers"] == {"origin": "set", "destination": "set"}
    routes = seen["routes"]
    assert set(routes) == set(PROFILES)
    for profile, r in routes.items():
        assert r["state"] == "ready", (profile, r)
        assert min(r["distance_m"], r["duration_s"], r["dose_ug"]) > 0, (profile, r)
    shortest, least = routes["shortest"], routes["least_exposure"]
    assert least["dose_ug"] <= shortest["dose_ug"] + 1e-3
    assert shortest["distance_m"] <= min(r["distance_m"] for r in routes.values()) + 0.1
    assert least["dose_pct"] < 0  # the hotspot lies on the shortest way
    assert seen["routes_field_version"] == "web-1"

    # A new field reaches the page without a reload, and the routes follow it.
    page.evaluate("window.sameDocument = true")
    api_server.publish(hotspot_snapshot(helsinki, "web-2", centre=HOTSPOT, peak_ugm3=90.0))
    assert wait_for_new_field(page, "web-1", timeout_ms=TIMEOUT_MS) == "web-2"
    assert page.evaluate("window.sameDocument") is True
    assert read_badge(page)["level"] == "fresh"
    after = read_routes(page)
    assert after["shortest"]["dose_ug"] > shortest["dose_ug"]  # a dirtier field, same way

    page.mouse.move(1, 1)  # no street tooltip in the picture
    paths = save_screenshot(page, tmp_path)
    print(f"web map screenshot: {', '.join(map(str, paths))}")
    assert paths[0].stat().st_size > 10_000
    assert seen["console_errors"] == []
    assert seen["external_requests"] == []


def test_search_options_errors_and_reset(page: Page, api_server: ApiServer) -> None:
    seen = watch_page(page, api_server.url)
    page.goto(api_server.url + "/")
    page.wait_for_selector('[data-testid="map-canvas"]:not([data-segments-drawn="0"])')

    # A street name (from the field's names) and a "lat,lon" pair.
    page.get_by_label("From", exact=True).fill("annankatu")
    page.get_by_label("To", exact=True).fill(f"{DESTINATION[0]}, {DESTINATION[1]}")
    page.get_by_test_id("route-button").click()
    ready = '[data-testid="route-panel"][data-state="ready"]'
    page.wait_for_selector(ready, timeout=TIMEOUT_MS)
    assert page.get_by_label("From", exact=True).input_value() == "Annankatu"
    assert page.get_by_test_id("origin-marker").get_attribute("data-state") == "set"
    no2 = read_routes(page)

    # Another pollutant and a later departure recompute the routes and the field.
    page.get_by_label("Pollutant", exact=True).select_option("pm25")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=route-note]').textContent.startsWith('PM₂.₅')",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_selector(ready, timeout=TIMEOUT_MS)
    pm25 = read_routes(page)
    assert pm25["shortest"]["dose_ug"] < no2["shortest"]["dose_ug"]  # 0.35 × NO2 here
    assert "PM₂.₅" in page.get_by_test_id("legend").inner_text()
    page.wait_for_selector('#depart-select option[value="60"]', state="attached")
    page.get_by_label("Departure", exact=True).select_option("60")
    page.wait_for_function(
        "() => /departing \\d/.test("
        "document.querySelector('[data-testid=route-note]').textContent)",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_selector(ready, timeout=TIMEOUT_MS)
    assert "+60 min" in page.get_by_test_id("legend").inner_text()

    # A point far from any street: the API's problem detail is shown in the page.
    page.get_by_label("To", exact=True).fill("60.30, 25.30")
    page.get_by_test_id("route-button").click()
    error = page.get_by_test_id("error")
    error.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert "from any rideable street" in error.inner_text()
    # So is an unknown street name, before any request.
    page.get_by_label("From", exact=True).fill("No Such Street")
    page.get_by_test_id("route-button").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=error]').textContent.includes('No Such')"
    )

    page.get_by_test_id("reset-button").click()
    assert page.get_by_test_id("origin-marker").get_attribute("data-state") == "empty"
    assert page.get_by_test_id("destination-marker").get_attribute("data-state") == "empty"
    assert page.get_by_test_id("route-panel").get_attribute("data-state") == "idle"
    assert page.get_by_test_id("error").is_hidden()

    # Zoom buttons and the keyboard work on the map.
    zoom = float(page.get_by_test_id("map-canvas").get_attribute("data-zoom") or 0)
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_test_id("map-canvas").press("-")
    page.get_by_test_id("map-canvas").press("-")
    after = float(page.get_by_test_id("map-canvas").get_attribute("data-zoom") or 0)
    assert after == pytest.approx(zoom - 1, abs=0.01)
    assert seen["console_errors"] == [] or all("422" in e for e in seen["console_errors"])
    assert seen["external_requests"] == []


def test_freshness_badge_levels(page: Page, api_server: ApiServer) -> None:
    """Green while fresh, amber past half the server's limit (or for the priors), red when
    stale or unreachable: the badge's rule, run in the browser."""
    page.goto(api_server.url + "/")
    levels = page.evaluate(
        """async () => {
            const { freshness } = await import('./panel.js');
            const info = (o) => ({version: 'v', source: 'store', stale: false,
                                  max_age_s: 120, ...o});
            return {
                fresh: freshness(info({}), 10, true).level,
                ageing: freshness(info({}), 70, true).level,
                stale: freshness(info({stale: true}), 130, true).level,
                past_limit: freshness(info({}), 125, true).level,
                offline: freshness(info({}), 10, false).level,
                prior: freshness(info({source: 'prior'}), 10, true).level,
                no_limit_old: freshness(info({max_age_s: null}), 300, true).level,
                no_limit_new: freshness(info({max_age_s: null}), 30, true).level,
            };
        }"""
    )
    assert levels == {
        "fresh": "fresh",
        "ageing": "ageing",
        "stale": "stale",
        "past_limit": "stale",
        "offline": "offline",
        "prior": "ageing",
        "no_limit_old": "ageing",
        "no_limit_new": "fresh",
    }
