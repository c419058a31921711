"""API fixtures: apps on the embedded Helsinki network, partner tokens, readings.

Every app gets its own directories (landing, dead letters, field store) under the test's
``tmp_path``; clients are entered as context managers so the app's lifespan (the field
subscriber) starts and stops within the test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import TOKENS, AppFactory
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airpath.api import ApiSettings, create_app


@pytest.fixture
def make_app(helsinki_dir: Path, tmp_path: Path) -> AppFactory:
    """``make_app(**settings)``: an app on Helsinki with landing, dead letters and tokens
    under ``tmp_path`` unless overridden; ``now=`` sets the clock."""

    def make(now: Callable[[], dt.datetime] | None = None, **overrides: Any) -> FastAPI:
        options: dict[str, Any] = {
            "landing_dir": tmp_path / "landing",
            "tokens": TOKENS,
            "max_field_age_s": 0.0,
            "field_poll_s": 0.02,
        }
        options.update(overrides)
        return create_app(ApiSettings.create(helsinki_dir, **options), now=now)

    return make


@pytest.fixture
def client(make_app: AppFactory) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


@pytest.fixture
def reading() -> Callable[..., dict[str, Any]]:
    """A valid low-cost NO2 reading in Helsinki from a minute ago; keywords override."""
    counter = iter(range(1_000_000))

    def make(**overrides: Any) -> dict[str, Any]:
        t = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1, seconds=next(counter))
        record: dict[str, Any] = {
            "sensor_id": "lab-1",
            "sensor_kind": "low_cost",
            "lat": 60.170,
            "lon": 24.945,
            "time": t.isoformat(),
            "pollutant": "no2",
            "value": 21.5,
            "unit": "ug/m3",
        }
        record.update(overrides)
        return record

    return make
