"""Helpers of the API tests: constants, problem assertions, landed files, snapshots."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI

from airpath import PollutionField
from airpath.network.store import Network
from airpath.serving import FieldSnapshot, network_key

AppFactory = Callable[..., FastAPI]  # the make_app fixture

TOKEN = "citizen-lab-token-0123456789"
OTHER_TOKEN = "partner-two-token-9876543210"
TOKENS = {TOKEN: "citizen-lab", OTHER_TOKEN: "partner-two"}
# Two street corners in central Helsinki (network nodes), about 800 m apart.
ORIGIN = (60.1672893, 24.9495009)
DESTINATION = (60.1697698, 24.937752)


def latlon(p: tuple[float, float]) -> str:
    return f"{p[0]},{p[1]}"


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (and type slug); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    if slug is not None:
        assert body["type"] == f"urn:airpath:problem:{slug}", body
    return body


def landed_records(landing: Path) -> list[dict[str, Any]]:
    """Every record in the landing directory's complete (non-hidden) files."""
    out = []
    for f in sorted(landing.glob("[!._]*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line]
    return out


def helsinki_snapshot(
    network: Network,
    version: str,
    *,
    newest: dt.datetime | None = None,
    level: float = 20.0,
    with_uncertainty: bool = True,
) -> FieldSnapshot:
    """A snapshot for the Helsinki network, every pollutant, horizons 0/15/30/60 min."""
    now = newest or dt.datetime.now(dt.UTC)
    n = network.n_edges
    ramp = np.linspace(0.0, 5.0, n)
    conc = {p: np.tile(level + k + ramp, (4, 1)) for k, p in enumerate(network.pollutants)}
    unc = {p: np.full((4, n), 1.5) for p in network.pollutants} if with_uncertainty else None
    fld = PollutionField.create(
        version, now, conc, n_edges=n, horizons_min=(0, 15, 30, 60), uncertainty_ugm3=unc
    )
    return FieldSnapshot(fld, network_key(network), "test-model-2", now, now)
