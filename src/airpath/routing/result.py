"""Route results: typed records, assembly from a path, turn-by-turn steps, GeoJSON.

Field names follow OSRM where they fit (``distance``/``duration`` become ``distance_m`` /
``duration_s`` here, with units in the name); ``steps`` carry an OSRM-like ``maneuver``.

Assembly works on whole arrays: a path's per-piece numbers are NumPy gathers from the
network's edge arrays, its points one gather from the network's flat geometry
(``geom_lonlat`` by ``geom_offsets``), with only the partly travelled edges (at its
ends) cut one by one. :func:`assemble` computes the totals at once; a route's ``coordinates``,
``legs`` and ``steps`` (many small Python objects) are built from the kept arrays the
first time one of them is read (see :class:`Route`), with the values eager assembly gave.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from airpath.network.segments import MODE_WALK
from airpath.network.store import Network

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The fields of a Route that assemble() leaves to be built on first read.
_DEFERRED = frozenset({"coordinates", "legs", "steps"})
# Per-edge quantities a piece travels in proportion (the fraction of the edge it covers).
_PER_PIECE = (
    "edge_length_m",
    "edge_duration_s",
    "edge_inhaled_m3",
    "edge_climb_m",
    "edge_descent_m",
)


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


def _new_leg(
    edge_id: int,
    start: float,
    end: float,
    name: str,
    length_m: float,
    duration_s: float,
    concentration_ugm3: float,
    dose_ug: float,
    walk: bool,
) -> Leg:
    """``Leg(...)`` at half the cost: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``, and a route has a leg per edge. Filling the instance
    dict in field order makes the same object (checked in tests/routing/test_result.py).
    """
    leg = object.__new__(Leg)
    leg.__dict__.update(
        edge_id=edge_id,
        start=start,
        end=end,
        name=name,
        length_m=length_m,
        duration_s=duration_s,
        concentration_ugm3=concentration_ugm3,
        dose_ug=dose_ug,
        walk=walk,
    )
    return leg


@dataclass(frozen=True)
class Step:
    instruction: str
    name: str
    distance_m: float
    duration_s: float
    maneuver: dict[str, Any]


@dataclass
class Route:
    """One route with everything a rider or an app shows about it.

    A route from :func:`assemble` builds ``coordinates``, ``legs`` and ``steps`` on
    first read (each once, also when threads race) and is otherwise an ordinary
    dataclass: equality, ``repr``, :func:`dataclasses.asdict`, copying and pickling all
    see the built values.
    """

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

    def _defer(self, detail: _Detail) -> None:
        """Drop the deferred fields; ``detail`` builds them when first read."""
        state = self.__dict__
        for name in _DEFERRED:
            del state[name]
        state["_detail"] = detail

    if not TYPE_CHECKING:  # for mypy, the fields are plain attributes

        def __getattr__(self, name: str) -> Any:
            # Python calls this only for attributes missing from the instance: here, a
            # deferred field not read yet. setdefault keeps the first value built, so
            # threads that race all get the same object.
            state = self.__dict__
            detail = state.get("_detail")
            if detail is None or name not in _DEFERRED:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = state.setdefault(name, getattr(detail, name)())
            if state.keys() >= _DEFERRED:
                state.pop("_detail", None)  # everything is built: let the arrays go
            return value

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy the built fields, never the builder."""
        for name in _DEFERRED:
            getattr(self, name)
        state = dict(self.__dict__)
        state.pop("_detail", None)
        return state

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
    n = len(pieces)
    flat = np.fromiter(itertools.chain.from_iterable(pieces), dtype=np.float64, count=3 * n)
    e = flat[0::3].astype(np.int64)
    a, b = flat[1::3], flat[2::3]
    f = b - a
    # One row per piece quantity (_PER_PIECE, then the dose), so one reduction sums all.
    per = np.empty((len(_PER_PIECE) + 1, n))
    arrays = network.arrays  # plain dict lookups (Network attributes go via __getattr__)
    for k, name in enumerate(_PER_PIECE):
        np.multiply(f, arrays[name][e], out=per[k])
    length, duration, inhaled, dose = per[0], per[1], per[2], per[-1]
    if depart_offset_s is None:
        conc_leg = conc[0][e]
    else:
        # The concentration at the middle of each piece's time on its edge, interpolated
        # between horizons like the time-dependent kernel does.
        t_mid = depart_offset_s + np.cumsum(duration) - 0.5 * duration
        conc_leg = _interp_columns(conc, horizons_s, e, t_mid)
    np.multiply(conc_leg, inhaled, out=dose)
    distance, duration_s, volume, climb, descent, total_dose = per.sum(axis=1).tolist()
    route = Route(
        profile=profile,
        label=profile.replace("_", " "),
        engine=engine,
        coordinates=[],
        distance_m=distance,
        duration_s=duration_s,
        dose_ug=total_dose,
        mean_concentration_ugm3=total_dose / volume if volume > 0 else 0.0,
        climb_m=climb,
        descent_m=descent,
        legs=[],
        steps=[],
        edge_path=e.tolist(),
    )
    if detail and n:
        route._defer(_Detail(network, e, a, b, length, duration, conc_leg, dose))
    return route


class _Detail:
    """A route's pieces and per-piece numbers, from which its deferred fields are built."""

    def __init__(
        self,
        network: Network,
        e: IntArray,
        a: FloatArray,
        b: FloatArray,
        length: FloatArray,
        duration: FloatArray,
        conc: FloatArray,
        dose: FloatArray,
    ) -> None:
        self.network = network
        self.e, self.a, self.b = e, a, b
        self.length, self.duration, self.conc, self.dose = length, duration, conc, dose
        self._points: tuple[FloatArray, IntArray] | None = None
        self._streets: tuple[list[str], list[bool]] | None = None

    def points(self) -> tuple[FloatArray, IntArray]:
        """:func:`path_points` of the pieces, computed once."""
        if self._points is None:
            self._points = path_points(self.network, self.e, self.a, self.b)
        return self._points

    def streets(self) -> tuple[list[str], list[bool]]:
        """Each piece's street name and whether the bike is walked there, computed once."""
        if self._streets is None:
            arrays = self.network.arrays
            segment = arrays["edge_segment"][self.e]
            names = self.network.names_array[arrays["segment_name"][segment]].tolist()
            walk = (arrays["edge_mode"][self.e] == MODE_WALK).tolist()
            self._streets = names, walk
        return self._streets

    def coordinates(self) -> list[list[float]]:
        points, bounds = self.points()
        # Pieces meet at junctions: each piece after the first drops its first point.
        keep = np.ones(len(points), dtype=bool)
        keep[bounds[1:-1]] = False
        coords: list[list[float]] = np.round(points[keep], 7).tolist()
        return coords

    def legs(self) -> list[Leg]:
        names, walk = self.streets()
        columns = (
            self.e.tolist(),
            self.a.tolist(),
            self.b.tolist(),
            names,
            self.length.tolist(),
            self.duration.tolist(),
            self.conc.tolist(),
            self.dose.tolist(),
            walk,
        )
        return list(map(_new_leg, *columns))

    def steps(self) -> list[Step]:
        points, bounds = self.points()
        names, walk = self.streets()
        return make_steps(names, walk, self.length, self.duration, points, bounds)


def path_points(
    network: Network, e: IntArray, a: FloatArray, b: FloatArray
) -> tuple[FloatArray, IntArray]:
    """The (lon, lat) points of pieces ``(e[i], a[i], b[i])`` in travel order.

    Returns ``(points, bounds)``: piece ``i`` is ``points[bounds[i]:bounds[i + 1]]``, the
    whole edge geometry where the piece covers the edge, else its :func:`_cut`.
    """
    arrays = network.arrays
    segment = arrays["edge_segment"][e]
    offsets = arrays["geom_offsets"]
    lo, hi = offsets[segment], offsets[segment + 1]
    count = hi - lo
    whole = (a <= 0.0) & (b >= 1.0)
    cuts = {
        i: _cut(network.edge_geometry(int(e[i])), float(a[i]), float(b[i]))
        for i in np.flatnonzero(~whole).tolist()
    }
    for i, part in cuts.items():
        count[i] = len(part)
    bounds = np.zeros(len(e) + 1, dtype=np.int64)
    np.cumsum(count, out=bounds[1:])
    # Rows of geom_lonlat for the whole pieces' points, in travel order: piece i counts
    # up from lo[i], or down from hi[i] - 1 on a reversed edge.
    take = np.where(whole, count, 0)
    rev = arrays["edge_reversed"][e]
    step = np.where(rev, -1, 1)
    first = np.where(rev, hi - 1, lo)
    at = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
    rows = np.repeat(first, take) + np.repeat(step, take) * at
    if not cuts:
        return arrays["geom_lonlat"][rows], bounds
    points = np.empty((int(bounds[-1]), 2))
    points[np.repeat(whole, count)] = arrays["geom_lonlat"][rows]
    for i, part in cuts.items():
        points[bounds[i] : bounds[i + 1]] = part
    return points, bounds


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
    x, y = points[:, 0], points[:, 1]
    seg = np.hypot((x[1:] - x[:-1]) * math.cos(math.radians(points[0, 1])), y[1:] - y[:-1])
    cum = np.zeros(len(points))
    np.cumsum(seg, out=cum[1:])
    total = cum[-1]
    if total == 0.0:
        return points[[0, 0]]
    da, db = a * total, b * total
    inner = points[(cum > da) & (cum < db)]
    (xa, xb), (ya, yb) = np.interp([da, db], cum, x).tolist(), np.interp([da, db], cum, y).tolist()
    out = np.empty((len(inner) + 2, 2))
    out[0, 0], out[0, 1], out[-1, 0], out[-1, 1] = xa, ya, xb, yb
    out[1:-1] = inner
    return out


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


def make_steps(
    names: list[str],
    walk: list[bool],
    length: FloatArray,
    duration: FloatArray,
    points: FloatArray,
    bounds: IntArray,
) -> list[Step]:
    """Turn-by-turn steps: one per run of pieces on the same street in the same mode.

    Piece ``i`` is on street ``names[i]``, walked if ``walk[i]``, ``length[i]`` m long,
    ``duration[i]`` s long, with points ``points[bounds[i]:bounds[i + 1]]`` (see
    :func:`path_points`).
    """
    n = len(names)
    if not n:
        return []
    starts = [0] + [i for i in range(1, n) if names[i] != names[i - 1] or walk[i] != walk[i - 1]]
    runs = len(starts)
    run_start = np.array(starts)
    first = bounds[run_start]  # the first point of each run
    last = bounds[np.append(run_start[1:], n)]  # one past the last point of each run
    # Bearings leaving the first piece and entering the last piece of every run, at once:
    # from point i to point i + 1, for i the first point of each run, then the last but
    # one of each run.
    at = np.concatenate([first, last - 2])
    pairs = points[np.stack([at, at + 1], axis=1)]
    bearing = _bearings(pairs[:, 0], pairs[:, 1]).tolist()
    after, before = bearing[:runs], bearing[runs:]
    run_length = np.add.reduceat(length, run_start).tolist()
    run_duration = np.add.reduceat(duration, run_start).tolist()
    location = points[first].tolist()
    steps: list[Step] = []
    prev_end_bearing = 0.0
    for i, k in enumerate(starts):
        start_bearing = after[i]
        name = names[k] or "an unnamed way"
        if i == 0:
            kind, modifier = "depart", _COMPASS[round(start_bearing / 45.0) % 8]
            text = f"Head {modifier} on {name}"
        else:
            kind, modifier = "turn", _modifier(prev_end_bearing, start_bearing)
            if modifier == "straight":
                text = f"Continue onto {name}"
            elif modifier == "uturn":
                text = f"Make a U-turn onto {name}"
            else:
                text = f"Turn {modifier} onto {name}"
        if walk[k]:
            text += " (walk your bike)"
        maneuver = {
            "type": kind,
            "modifier": modifier,
            "location": location[i],
            "bearing_before": round(prev_end_bearing),
            "bearing_after": round(start_bearing),
        }
        steps.append(Step(text, names[k], run_length[i], run_duration[i], maneuver))
        prev_end_bearing = before[i]
    arrive = {
        "type": "arrive",
        "modifier": "",
        "location": points[-1].tolist(),
        "bearing_before": round(prev_end_bearing),
        "bearing_after": 0,
    }
    steps.append(Step("Arrive at your destination", "", 0.0, 0.0, arrive))
    return steps
