"""Reference stations: where they stand, read from a file or placed deterministically.

A station reports the hourly mean of the truth at its nearest edge with a small noise
(regulatory analysers: a few per cent, EN 14211 / EN 12341 uncertainty budgets), stamped
at the end of the hour, as public feeds publish them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airpath.errors import SimulationError
from airpath.network.store import Network
from airpath.sensors.incidents import edge_midpoints_m, nearest_edges

NOISE_REL = 0.03  # relative standard deviation of an hourly reference value
NOISE_FLOOR_UGM3 = 0.5  # absolute floor of that standard deviation


@dataclass(frozen=True)
class StationSite:
    """A reference station, placed on ``edge`` (the nearest to its coordinates)."""

    sensor_id: str
    name: str
    lat: float
    lon: float
    edge: int
    pollutants: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "sensor_id": self.sensor_id,
            "sensor_kind": "reference",
            "name": self.name,
            "lat": self.lat,
            "lon": self.lon,
            "edge": self.edge,
            "pollutants": list(self.pollutants),
            "noise_rel": NOISE_REL,
            "noise_floor_ugm3": NOISE_FLOOR_UGM3,
        }


def _pollutant_of(measure: dict[str, Any]) -> str | None:
    # "NO<sub>2</sub>" → "no2", "PM<sub>2.5</sub>" → "pm25"
    text = str(measure.get("acronym") or measure.get("pollutant") or "")
    key = re.sub(r"<[^>]+>|[.,\s]", "", text).lower()
    return key if key in {"no2", "pm10", "pm25", "o3"} else None


def read_stations(path: str | Path, network: Network) -> list[StationSite]:
    """Stations from a JSON list, e.g. Barcelona's real-time feed.

    Each item needs a code/id, latitude/longitude (numbers or strings), and optionally
    ``measures`` (with ``acronym`` such as ``NO<sub>2</sub>``) or ``pollutants``; only
    pollutants the network carries are kept, all of them when none is stated.
    """
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SimulationError(f"{path}: unreadable station file: {exc}") from None
    if not isinstance(items, list) or not items:
        raise SimulationError(f"{path}: expected a non-empty JSON list of stations")
    carried = tuple(network.pollutants)
    out: list[StationSite] = []
    try:
        latlons = [
            (float(s.get("latitude", s.get("lat"))), float(s.get("longitude", s.get("lon"))))
            for s in items
        ]
    except (AttributeError, TypeError, ValueError) as exc:
        raise SimulationError(
            f"{path}: station without a numeric latitude/longitude: {exc}"
        ) from None
    for lat, lon in latlons:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise SimulationError(f"{path}: station at ({lat}, {lon}) is out of range")
    edges = nearest_edges(network, latlons)
    for (lat, lon), s, edge in zip(latlons, items, edges, strict=True):
        named = [_pollutant_of(m) for m in s.get("measures", []) if isinstance(m, dict)]
        named += [str(p).lower() for p in s.get("pollutants", [])]
        pols = tuple(p for p in carried if p in named) or carried
        code = str(s.get("code", s.get("id", f"{len(out):02d}")))
        out.append(StationSite(f"ref-{code}", str(s.get("name", code)), lat, lon, edge, pols))
    return out


def default_stations(network: Network) -> list[StationSite]:
    """Two roadside stations on the most polluted streets and two background ones.

    Deterministic (no seed): the highest-NO2-prior edge, then the highest one at least
    a quarter of the city's extent away; the same from the lowest-prior end.
    """
    x, y = edge_midpoints_m(network)
    spread_m = 0.25 * float(np.hypot(np.ptp(x), np.ptp(y)))
    no2 = np.asarray(network.edge_prior_ugm3[0], dtype=np.float64)
    order_busy = np.argsort(-no2, kind="stable")
    order_quiet = np.argsort(no2, kind="stable")
    chosen: list[tuple[str, int]] = []
    for label, order in (("roadside", order_busy), ("background", order_quiet)):
        first = int(order[0])
        far = np.hypot(x[order] - x[first], y[order] - y[first]) >= spread_m
        second = int(order[np.argmax(far)]) if far.any() else int(order[1])
        chosen += [(f"{label}-1", first), (f"{label}-2", second)]
    out = []
    tail, head = network.edge_tail, network.edge_head
    for name, e in chosen:
        lat = float(0.5 * (network.node_lat[tail[e]] + network.node_lat[head[e]]))
        lon = float(0.5 * (network.node_lon[tail[e]] + network.node_lon[head[e]]))
        out.append(
            StationSite(f"ref-{name}", name, round(lat, 6), round(lon, 6), e, network.pollutants)
        )
    return out
