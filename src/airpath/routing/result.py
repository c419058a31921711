"""Route results: typed records, assembly from a path, turn-by-turn steps, GeoJSON.

Field names follow OSRM where they fit (``distance``/``duration`` become ``distance_m`` /
``duration_s`` here, with units in the name); ``steps`` carry an OSRM-like ``maneuver``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from airpath.network.segments import MODE_WALK
from airpath.network.store import Network

_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Leg:
    """The part of edge ``edge_id`` travelled, from ``start`` to ``end`` (fractions)."""

    edge_id: int
    start: float
    end: float
    name: str
    length_m: float
    duration_s: float
    concentration_ugm3: float
    dose_ug: float
    walk: bool


@dataclass(frozen=True)
class Step:
    instruction: str
    name: str
    distance_m: float
    duration_s: float
    maneuver: dict[str, Any]


@dataclass
class Route:
    """One route with everything a rider or an app shows about it."""

    profile: str
    label: str
    engine: str
    coordinates: list[list[float]]  # [lon, lat] pairs, GeoJSON order
    distance_m: float
    duration_s: float
    dose_ug: float
    mean_concentration_ugm3: float
    climb_m: float
    descent_m: float
    legs: list[Leg]
    steps: list[Step]
    dose_change_pct: float = 0.0
    distance_change_pct: float = 0.0
    edge_path: list[int] = field(default_factory=list, repr=False)

    @property
    def edge_ids(self) -> list[int]:
        return [leg.edge_id for leg in self.legs]

    def to_feature(self) -> dict[str, Any]:
        """A GeoJSON Feature: LineString geometry, the statistics as properties."""
        props = {k: v for k, v in asdict(self).items() if k not in ("coordinates", "edge_path")}
        return {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": self.coordinates},
            "properties": props,
        }


@dataclass
class RouteResult:
    """The answer to one routing request: routes (the requested one first) and context."""

    routes: list[Route]
    pollutant: str
    field_version: str
    field_valid_at: dt.datetime
    depart: dt.datetime | None
    origin: tuple[float, float]
    destination: tuple[float, float]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Route:
        return self.routes[0]

    def to_geojson(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": [r.to_feature() for r in self.routes],
            "properties": {
                "pollutant": self.pollutant,
                "field_version": self.field_version,
                "field_valid_at": self.field_valid_at.isoformat(),
                "depart": self.depart.isoformat() if self.depart else None,
                "origin": list(self.origin),
                "destination": list(self.destination),
                **self.meta,
            },
        }


Piece = tuple[int, float, float]  # (edge, start fraction, end fraction)


def assemble(
    network: Network,
    pieces: list[Piece],
    profile: str,
    engine: str,
    conc: np.ndarray,
    horizons_s: np.ndarray,
    depart_offset_s: float | None,
    *,
    detail: bool = True,
) -> Route:
    """Build a :class:`Route` from the edge pieces travelled, in order.

    ``detail=False`` computes the totals only (no legs, steps or coordinates).

    ``conc`` has shape (horizons, edges); with ``depart_offset_s`` (seconds after the
    field's time) each piece takes the concentration at the middle of its time on the
    edge, otherwise the horizon-0 value.
    """
    e = np.fromiter((p[0] for p in pieces), dtype=np.int64, count=len(pieces))
    a = np.fromiter((p[1] for p in pieces), dtype=np.float64, count=len(pieces))
    b = np.fromiter((p[2] for p in pieces), dtype=np.float64, count=len(pieces))
    f = b - a
    length = f * network.edge_length_m[e]
    duration = f * network.edge_duration_s[e]
    inhaled = f * network.edge_inhaled_m3[e]
    if depart_offset_s is None:
        conc_leg = conc[0, e]
    else:
        # The concentration at the middle of each piece's time on its edge, interpolated
        # between horizons like the time-dependent kernel does.
        t_mid = depart_offset_s + np.cumsum(duration) - 0.5 * duration
        conc_leg = _interp_columns(conc, horizons_s, e, t_mid)
    dose = conc_leg * inhaled
    legs: list[Leg] = []
    geoms: list[np.ndarray] = []
    if detail:
        names = network.names_array[network.segment_name[network.edge_segment[e]]]
        walk = network.edge_mode[e] == MODE_WALK
        legs = [
            Leg(int(e_), a_, b_, str(n_), l_, d_, c_, x_, bool(w_))
            for e_, a_, b_, n_, l_, d_, c_, x_, w_ in zip(
                e.tolist(),
                a.tolist(),
                b.tolist(),
                names,
                length.tolist(),
                duration.tolist(),
                conc_leg.tolist(),
                dose.tolist(),
                walk.tolist(),
                strict=True,
            )
        ]
        geoms = [_cut(network.edge_geometry(leg.edge_id), leg.start, leg.end) for leg in legs]
    # Legs meet at junctions: each leg after the first drops its first point.
    parts = [g if i == 0 else g[1:] for i, g in enumerate(geoms)]
    coords = np.round(np.concatenate(parts), 7).tolist() if parts else []
    total_dose, volume = float(dose.sum()), float(inhaled.sum())
    return Route(
        profile=profile,
        label=profile.replace("_", " "),
        engine=engine,
        coordinates=coords,
        distance_m=float(length.sum()),
        duration_s=float(duration.sum()),
        dose_ug=total_dose,
        mean_concentration_ugm3=total_dose / volume if volume > 0 else 0.0,
        climb_m=float((f * network.edge_climb_m[e]).sum()),
        descent_m=float((f * network.edge_descent_m[e]).sum()),
        legs=legs,
        steps=make_steps(legs, geoms),
        edge_path=e.tolist(),
    )


def _interp_columns(
    conc: np.ndarray, horizons_s: np.ndarray, e: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """``np.interp(t[i], horizons_s, conc[:, e[i]])`` for every i at once."""
    k = np.clip(np.searchsorted(horizons_s, t), 1, len(horizons_s) - 1)
    if len(horizons_s) == 1:
        return conc[0, e]
    h0, h1 = horizons_s[k - 1], horizons_s[k]
    w = np.clip((t - h0) / (h1 - h0), 0.0, 1.0)
    return (1.0 - w) * conc[k - 1, e] + w * conc[k, e]


def _cut(points: np.ndarray, a: float, b: float) -> np.ndarray:
    """The part of a polyline between fractions a < b of its (planar) length, (k, 2)."""
    if a <= 0.0 and b >= 1.0:
        return points
    seg = np.hypot(
        np.diff(points[:, 0]) * math.cos(math.radians(points[0, 1])), np.diff(points[:, 1])
    )
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total == 0.0:
        return points[[0, 0]]
    da, db = a * total, b * total
    inner = points[(cum > da) & (cum < db)]
    return np.vstack([_at(points, cum, da), inner, _at(points, cum, db)])


def _at(points: np.ndarray, cum: np.ndarray, d: float) -> np.ndarray:
    return np.array([np.interp(d, cum, points[:, 0]), np.interp(d, cum, points[:, 1])])


def _bearings(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Initial great-circle bearings (degrees from north) from points p to q, (n, 2) each."""
    lon1, lat1 = np.radians(p[:, 0]), np.radians(p[:, 1])
    lon2, lat2 = np.radians(q[:, 0]), np.radians(q[:, 1])
    y = np.sin(lon2 - lon1) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    return (np.degrees(np.arctan2(y, x)) + 360.0) % 360.0


_COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")


def _modifier(before: float, after: float) -> str:
    turn = (after - before + 540.0) % 360.0 - 180.0  # -180..180, positive = right
    a = abs(turn)
    side = "right" if turn > 0 else "left"
    if a < 20:
        return "straight"
    if a < 45:
        return f"slight {side}"
    if a < 135:
        return side
    if a < 170:
        return f"sharp {side}"
    return "uturn"


def make_steps(legs: list[Leg], geoms: list[np.ndarray]) -> list[Step]:
    """Turn-by-turn steps: one per run of legs on the same street in the same mode."""
    if not legs:
        return []
    starts = [0] + [
        i
        for i in range(1, len(legs))
        if legs[i].name != legs[i - 1].name or legs[i].walk != legs[i - 1].walk
    ]
    ends = [*(k - 1 for k in starts[1:]), len(legs) - 1]
    # Bearings leaving the first leg and entering the last leg of every run, at once.
    head_pts = np.stack([geoms[k][:2] for k in starts])
    tail_pts = np.stack([geoms[k][-2:] for k in ends])
    after = _bearings(head_pts[:, 0], head_pts[:, 1])
    before = _bearings(tail_pts[:, 0], tail_pts[:, 1])
    length = np.add.reduceat(np.array([leg.length_m for leg in legs]), starts)
    duration = np.add.reduceat(np.array([leg.duration_s for leg in legs]), starts)
    steps: list[Step] = []
    prev_end_bearing = 0.0
    for i, k in enumerate(starts):
        leg = legs[k]
        start_bearing = float(after[i])
        name = leg.name or "an unnamed way"
        if i == 0:
            kind, modifier = "depart", _COMPASS[round(start_bearing / 45.0) % 8]
            text = f"Head {modifier} on {name}"
        else:
            kind, modifier = "turn", _modifier(prev_end_bearing, start_bearing)
            text = {"straight": f"Continue onto {name}", "uturn": f"Make a U-turn onto {name}"}.get(
                modifier, f"Turn {modifier} onto {name}"
            )
        if leg.walk:
            text += " (walk your bike)"
        steps.append(
            Step(
                instruction=text,
                name=leg.name,
                distance_m=float(length[i]),
                duration_s=float(duration[i]),
                maneuver={
                    "type": kind,
                    "modifier": modifier,
                    "location": geoms[k][0].tolist(),
                    "bearing_before": round(prev_end_bearing),
                    "bearing_after": round(start_bearing),
                },
            )
        )
        prev_end_bearing = float(before[i])
    arrive = {
        "type": "arrive",
        "modifier": "",
        "location": geoms[-1][-1].tolist(),
        "bearing_before": round(prev_end_bearing),
        "bearing_after": 0,
    }
    steps.append(Step("Arrive at your destination", "", 0.0, 0.0, arrive))
    return steps
