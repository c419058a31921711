"""Incidents: a traffic jam or road works that raises NO2 on a few connected streets.

An incident multiplies the truth on its edges by ``factor`` for NO2 and by
``1 + PM_SHARE × (factor - 1)`` for particles (idling and stop-and-go traffic emit
mostly NOx; PM rises a little from brake wear and resuspension) during
``[start, start + duration)``. The edges are a connected patch: a breadth-first walk
from one edge until about ``length_m`` of street is covered, both directions of every
street included.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airpath.errors import SimulationError
from airpath.network.store import Network
from airpath.sensors.clock import format_time, parse_time

PM_SHARE = 0.2  # fraction of the NO2 uplift that PM sees
DEFAULT_RATE_PER_DAY = 4.0  # random incidents per simulated day over the whole city
FACTOR_RANGE = (1.5, 3.0)
DURATION_RANGE_MIN = (20.0, 90.0)
DEFAULT_LENGTH_M = 1000.0


@dataclass(frozen=True)
class Incident:
    """One incident: where (edges), when, and how strong (NO2 factor)."""

    start: dt.datetime
    duration_min: float
    factor: float
    edges: tuple[int, ...]
    kind: str = "traffic_jam"

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(minutes=self.duration_min)

    def factor_for(self, pollutant: str) -> float:
        if pollutant == "no2":
            return self.factor
        return 1.0 + PM_SHARE * (self.factor - 1.0)

    def active(self, t: dt.datetime) -> bool:
        return self.start <= t < self.end

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "duration_min": self.duration_min,
            "factor_no2": self.factor,
            "factor_pm": self.factor_for("pm10"),
            "edges": list(self.edges),
        }


def connected_edges(network: Network, first_edge: int, length_m: float) -> tuple[int, ...]:
    """Edges reached breadth-first from ``first_edge`` until ``length_m`` is covered."""
    indptr, head = network.indptr, network.edge_head
    seg = network.edge_segment
    seen = {first_edge}
    queue = deque([first_edge])
    covered_m = 0.0
    while queue and covered_m < length_m:
        e = queue.popleft()
        covered_m += float(network.edge_length_m[e])
        n = int(head[e])
        for f in range(int(indptr[n]), int(indptr[n + 1])):
            if f not in seen:
                seen.add(f)
                queue.append(f)
    segments = np.unique(seg[np.fromiter(seen, dtype=np.int64)])
    both_ways = np.flatnonzero(np.isin(seg, segments))
    return tuple(int(e) for e in both_ways)


def random_incidents(
    network: Network,
    rng: np.random.Generator,
    start: dt.datetime,
    duration_s: float,
    rate_per_day: float = DEFAULT_RATE_PER_DAY,
) -> list[Incident]:
    """A Poisson number of incidents at uniform times, places, strengths and lengths."""
    n = int(rng.poisson(rate_per_day * duration_s / 86400.0))
    out = []
    for offset_s in np.sort(rng.uniform(0.0, duration_s, size=n)):
        first = int(rng.integers(network.n_edges))
        out.append(
            Incident(
                start=start + dt.timedelta(seconds=round(float(offset_s))),
                duration_min=round(float(rng.uniform(*DURATION_RANGE_MIN)), 1),
                factor=round(float(rng.uniform(*FACTOR_RANGE)), 3),
                edges=connected_edges(network, first, DEFAULT_LENGTH_M),
                kind=str(rng.choice(["traffic_jam", "road_works"])),
            )
        )
    return out


def incident_from_spec(
    network: Network, spec: Mapping[str, Any], sim_start: dt.datetime
) -> Incident:
    """An incident from a dict, e.g. from ``--incidents FILE``.

    Keys: ``start`` (ISO time) or ``start_offset_min`` (after the simulation start);
    ``duration_min``; ``factor`` (or ``factor_no2``); where: ``edges`` (a list),
    ``edge`` (BFS from it) or ``lat``/``lon`` (BFS from the nearest edge);
    optional ``length_m`` and ``kind``.
    """
    try:
        if "start" in spec:
            start = parse_time(str(spec["start"]))
        else:
            start = sim_start + dt.timedelta(minutes=float(spec.get("start_offset_min", 0.0)))
        duration_min = float(spec["duration_min"])
        factor = float(spec.get("factor", spec.get("factor_no2", 2.0)))
        length_m = float(spec.get("length_m", DEFAULT_LENGTH_M))
        if "edges" in spec:
            edges = tuple(int(e) for e in spec["edges"])
        elif "edge" in spec:
            edges = connected_edges(network, int(spec["edge"]), length_m)
        else:
            first = nearest_edges(network, [(float(spec["lat"]), float(spec["lon"]))])[0]
            edges = connected_edges(network, first, length_m)
    except (KeyError, TypeError, ValueError) as exc:
        raise SimulationError(f"bad incident {dict(spec)!r}: {exc}") from None
    if duration_min <= 0 or factor <= 0:
        raise SimulationError(f"incident needs duration_min > 0 and factor > 0: {dict(spec)!r}")
    if not edges or min(edges) < 0 or max(edges) >= network.n_edges:
        raise SimulationError(f"incident edges outside the network: {dict(spec)!r}")
    return Incident(start, duration_min, factor, edges, str(spec.get("kind", "traffic_jam")))


def read_incidents(path: str | Path, network: Network, sim_start: dt.datetime) -> list[Incident]:
    """Incidents from a JSON file holding a list of specs (see :func:`incident_from_spec`)."""
    try:
        specs = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SimulationError(f"{path}: unreadable incident file: {exc}") from None
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise SimulationError(f"{path}: expected a JSON list of incident objects")
    return [incident_from_spec(network, s, sim_start) for s in specs]


def nearest_edges(network: Network, latlons: Sequence[tuple[float, float]]) -> list[int]:
    """Index of the edge whose midpoint is nearest to each (lat, lon)."""
    x, y = edge_midpoints_m(network)
    lat0 = float(np.mean(network.node_lat))
    out = []
    for lat, lon in latlons:
        px, py = project_m(np.array([lon]), np.array([lat]), lat0)
        out.append(int(np.argmin((x - px[0]) ** 2 + (y - py[0]) ** 2)))
    return out


def project_m(
    lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any], lat0: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Equirectangular metres around latitude ``lat0`` (good to 0.1 % over a city)."""
    r_m = 6_371_008.8  # mean Earth radius, IUGG
    x = np.radians(lon) * r_m * np.cos(np.radians(lat0))
    y = np.radians(lat) * r_m
    return x, y


def edge_midpoints_m(network: Network) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Projected midpoint of each edge's end nodes, in metres."""
    lat0 = float(np.mean(network.node_lat))
    tail, head = network.edge_tail, network.edge_head
    lon = 0.5 * (network.node_lon[tail] + network.node_lon[head])
    lat = 0.5 * (network.node_lat[tail] + network.node_lat[head])
    return project_m(lon.astype(np.float64), lat.astype(np.float64), lat0)
