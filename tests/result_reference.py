"""The NumPy route assembly that airpath.routing.result used before its compiled kernels,
kept as the oracle the kernels must match, with the time interpolation of
concentrations it used (``_interp_columns``).

Per leg: one geometry array and one cut each (``ref_cut``), steps from ``Leg`` objects
with NumPy bearings; per route: the per-piece products and one pairwise sum per quantity
(``ref_legs_and_totals``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airpath.network.segments import MODE_WALK
from airpath.network.store import Network
from airpath.routing.legs import Leg
from airpath.routing.result import Piece
from airpath.routing.steps import Step

COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")


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


PER_PIECE = (
    "edge_length_m",
    "edge_duration_s",
    "edge_inhaled_m3",
    "edge_climb_m",
    "edge_descent_m",
)


def ref_cut(points: np.ndarray, a: float, b: float) -> np.ndarray:
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

    def at(d: float) -> np.ndarray:
        return np.array([np.interp(d, cum, points[:, 0]), np.interp(d, cum, points[:, 1])])

    return np.vstack([at(da), inner, at(db)])


def ref_bearings(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Initial great-circle bearings (degrees from north) from points p to q, (n, 2) each."""
    lon1, lat1 = np.radians(p[:, 0]), np.radians(p[:, 1])
    lon2, lat2 = np.radians(q[:, 0]), np.radians(q[:, 1])
    y = np.sin(lon2 - lon1) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    return (np.degrees(np.arctan2(y, x)) + 360.0) % 360.0


def ref_modifier(before: float, after: float) -> str:
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


def ref_geoms(network: Network, legs: list[Leg]) -> list[np.ndarray]:
    return [ref_cut(network.edge_geometry(leg.edge_id), leg.start, leg.end) for leg in legs]


def ref_coordinates(geoms: list[np.ndarray]) -> list[list[float]]:
    parts = [g if i == 0 else g[1:] for i, g in enumerate(geoms)]
    coords: list[list[float]] = np.round(np.concatenate(parts), 7).tolist()
    return coords


def ref_steps(legs: list[Leg], geoms: list[np.ndarray]) -> list[Step]:
    if not legs:
        return []
    starts = [0] + [
        i
        for i in range(1, len(legs))
        if legs[i].name != legs[i - 1].name or legs[i].walk != legs[i - 1].walk
    ]
    ends = [*(k - 1 for k in starts[1:]), len(legs) - 1]
    head_pts = np.stack([geoms[k][:2] for k in starts])
    tail_pts = np.stack([geoms[k][-2:] for k in ends])
    after = ref_bearings(head_pts[:, 0], head_pts[:, 1])
    before = ref_bearings(tail_pts[:, 0], tail_pts[:, 1])
    length = np.add.reduceat(np.array([leg.length_m for leg in legs]), starts)
    duration = np.add.reduceat(np.array([leg.duration_s for leg in legs]), starts)
    steps: list[Step] = []
    prev_end_bearing = 0.0
    for i, k in enumerate(starts):
        leg = legs[k]
        start_bearing = float(after[i])
        name = leg.name or "an unnamed way"
        if i == 0:
            kind, modifier = "depart", COMPASS[round(start_bearing / 45.0) % 8]
            text = f"Head {modifier} on {name}"
        else:
            kind, modifier = "turn", ref_modifier(prev_end_bearing, start_bearing)
            text = {"straight": f"Continue onto {name}", "uturn": f"Make a U-turn onto {name}"}.get(
                modifier, f"Turn {modifier} onto {name}"
            )
        if leg.walk:
            text += " (walk your bike)"
        maneuver: dict[str, Any] = {
            "type": kind,
            "modifier": modifier,
            "location": geoms[k][0].tolist(),
            "bearing_before": round(prev_end_bearing),
            "bearing_after": round(start_bearing),
        }
        steps.append(Step(text, leg.name, float(length[i]), float(duration[i]), maneuver))
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


def ref_legs_and_totals(
    network: Network,
    pieces: list[Piece],
    conc: np.ndarray,
    horizons_s: np.ndarray,
    offset_s: float | None,
) -> tuple[list[Leg], list[float]]:
    """Legs and ``[distance, duration, inhaled volume, climb, descent, dose]`` of pieces
    under concentrations ``conc`` (horizons, edges), as the NumPy assembly computed them:
    each piece at the horizon-0 value, or with ``offset_s`` (seconds after the field's
    time) at the middle of its time on its edge."""
    arrays = network.arrays
    flat = np.array(pieces, dtype=np.float64).reshape(-1, 3)
    e, a, b = flat[:, 0].astype(np.int64), flat[:, 1].copy(), flat[:, 2].copy()
    f = b - a
    per = np.empty((len(PER_PIECE) + 1, len(e)))
    for k, name in enumerate(PER_PIECE):
        np.multiply(f, arrays[name][e], out=per[k])
    if offset_s is None:
        conc_leg = conc[0][e]
    else:
        t_mid = offset_s + np.cumsum(per[1]) - 0.5 * per[1]
        conc_leg = _interp_columns(conc, horizons_s, e, t_mid)
    np.multiply(conc_leg, per[2], out=per[-1])
    names = network.names_array[arrays["segment_name"][arrays["edge_segment"][e]]].tolist()
    walk = (arrays["edge_mode"][e] == MODE_WALK).tolist()
    columns = (e, a, b, names, per[0], per[1], conc_leg, per[-1], walk)
    rows = zip(*(c if isinstance(c, list) else c.tolist() for c in columns), strict=True)
    return [Leg(*row) for row in rows], per.sum(axis=1).tolist()
