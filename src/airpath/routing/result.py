"""Route results: typed records, assembly from a path, turn-by-turn steps, GeoJSON.

Field names follow OSRM where they fit (``distance``/``duration`` become ``distance_m`` /
``duration_s`` here, with units in the name); ``steps`` carry an OSRM-like ``maneuver``.

The numbers come from the compiled kernels of :mod:`.detail_kernels`, a few calls per
route for its totals (pieces, the rider's times, sums) and one for its detail, because
a route's few dozen pieces made tens of small NumPy calls cost more than the arithmetic.
:func:`assemble` computes the totals at once (:func:`path_totals` only those, for the
shortest route a request is compared against); a route's ``coordinates``, ``legs``
and ``steps`` (many small Python objects) are built from the kept arrays the first time
one of them is read (see :class:`Route`).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from airpath.errors import SameEndpointsError
from airpath.network.segments import MODE_WALK
from airpath.network.store import Network
from airpath.routing.detail_kernels import (
    DURATION,
    END,
    LENGTH,
    START,
    TURN_KINDS,
    Piece,
    Quantities,
    at_times,
    between_table,
    between_totals,
    piece_table,
    route_detail,
    table_totals,
)
from airpath.routing.legs import Legs
from airpath.routing.steps import Steps

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The fields of a Route that assemble() leaves to be built on first read.
_DEFERRED = frozenset({"coordinates", "legs", "steps"})
_COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")
_TURN_TEXT = {"straight": "Continue onto ", "uturn": "Make a U-turn onto "}
# By route_detail's maneuver code: the step's type and modifier, and its instruction up
# to the street's name.
_KIND = ("depart",) * len(_COMPASS) + ("turn",) * len(TURN_KINDS)
_MODIFIER = (*_COMPASS, *TURN_KINDS)
_TEXT = (
    *(f"Head {c} on " for c in _COMPASS),
    *(_TURN_TEXT.get(m, f"Turn {m} onto ") for m in TURN_KINDS),
)


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
    legs: Legs  # the per-edge breakdown, columnar (see airpath.routing.legs)
    steps: Steps  # turn by turn, columnar (see airpath.routing.steps)
    dose_change_pct: float = 0.0
    distance_change_pct: float = 0.0
    edge_path: list[int] = field(default_factory=list, repr=False)

    @property
    def edge_ids(self) -> list[int]:
        return list(self.edge_path)

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
        props: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("coordinates", "edge_path"):  # the geometry; internal
                continue
            value = getattr(self, f.name)
            if f.name in ("legs", "steps"):  # records to JSON objects (copies)
                value = [asdict(record) for record in value]
            props[f.name] = value
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


class Path(NamedTuple):
    """Pieces travelled in order, as arrays: edge ``e[i]`` from fraction ``a[i]`` to
    ``b[i]``. The engines' answers come as whole edges between two partial ones
    (:meth:`between`), made into arrays without a tuple per piece."""

    e: IntArray
    a: FloatArray
    b: FloatArray

    @classmethod
    def of(cls, pieces: list[Piece]) -> Path:
        """Any pieces, e.g. those of a time-dependent search or a single partial edge."""
        n = len(pieces)
        flat = np.fromiter(itertools.chain.from_iterable(pieces), dtype=np.float64, count=3 * n)
        return cls(flat[0::3].astype(np.int64), flat[1::3], flat[2::3])

    @classmethod
    def between(cls, first: Piece, edges: list[int], last: Piece) -> Path:
        """``first``, the whole of each of ``edges``, then ``last``."""
        n = len(edges) + 2
        e = np.empty(n, dtype=np.int64)
        e[1:-1] = edges
        a, b = np.zeros(n), np.empty(n)
        b.fill(1.0)
        e[0], a[0], b[0] = first
        e[-1], a[-1], b[-1] = last
        return cls(e, a, b)


class Between(NamedTuple):
    """A contraction hierarchy's answer as it comes: ``first``, the whole of each of
    ``edges`` (the engine's list), then ``last``. Its totals need no arrays
    (:func:`path_totals`); a route makes it a :class:`Path`."""

    first: Piece
    edges: list[int]
    last: Piece

    def path(self) -> Path:
        return Path.between(self.first, self.edges, self.last)


class Totals(NamedTuple):
    """What a route is compared against when only its numbers are needed (the shortest
    route, when it is not shown): its distance, dose and edges."""

    distance_m: float
    dose_ug: float
    edge_path: list[int]


def _quantities(network: Network, conc: np.ndarray) -> Quantities:
    """The edge quantities of a piece table (see ``piece_table``), at ``conc[0]``."""
    arrays = network.arrays  # plain dict lookups (Network attributes go via __getattr__)
    return (
        arrays["edge_length_m"],
        arrays["edge_duration_s"],
        arrays["edge_inhaled_m3"],
        arrays["edge_climb_m"],
        arrays["edge_descent_m"],
        conc[0],
    )


def _some_pieces(e: IntArray) -> None:
    """Raise :class:`SameEndpointsError` when a path keeps no piece."""
    if not len(e):
        raise SameEndpointsError("origin and destination are the same place")


def _pieces(
    network: Network,
    path: Path | Between,
    conc: np.ndarray,
    horizons_s: np.ndarray,
    depart_offset_s: float | None,
) -> tuple[IntArray, FloatArray]:
    """``piece_table`` of ``path`` under ``conc``, at the rider's times when departing
    ``depart_offset_s`` after the field's time; no piece left raises."""
    quantities = _quantities(network, conc)
    if isinstance(path, Between):
        edges = np.array(path.edges, dtype=np.int64)
        e, per = between_table(edges, path.first, path.last, quantities)
    else:
        e, per = piece_table(path.e, path.a, path.b, quantities)
    _some_pieces(e)
    if depart_offset_s is not None:
        at_times(per, e, conc, horizons_s, depart_offset_s)
    return e, per


def path_totals(
    network: Network,
    path: Path | Between,
    conc: np.ndarray,
    horizons_s: np.ndarray,
    depart_offset_s: float | None,
) -> Totals:
    """The :class:`Totals` of ``path``: the same numbers as :func:`assemble`'s route."""
    if isinstance(path, Between) and (depart_offset_s is None or conc.shape[0] == 1):
        # One horizon: every piece is at conc[0], whatever the rider's times.
        e, distance, dose = between_totals(
            np.array(path.edges, dtype=np.int64),
            path.first,
            path.last,
            _quantities(network, conc),
        )
        _some_pieces(e)
    else:
        e, per = _pieces(network, path, conc, horizons_s, depart_offset_s)
        _volume, _climb, _descent, distance, _duration, dose = table_totals(per)
    return Totals(distance, dose, e.tolist())


def assemble(
    network: Network,
    path: Path | Between,
    profile: str,
    engine: str,
    conc: np.ndarray,
    horizons_s: np.ndarray,
    depart_offset_s: float | None,
    *,
    detail: bool = True,
) -> Route:
    """Build a :class:`Route` from the edge pieces travelled, in order, leaving out the
    pieces of no length (at most 1e-12 of an edge); none left raises
    :class:`SameEndpointsError`.

    ``detail=False`` computes the totals only (no legs, steps or coordinates).

    ``conc`` has shape (horizons, edges); with ``depart_offset_s`` (seconds after the
    field's time) each piece takes the concentration at the middle of its time on the
    edge, interpolated between horizons like the time-dependent kernel does, otherwise
    the horizon-0 value.
    """
    e, per = _pieces(network, path, conc, horizons_s, depart_offset_s)
    volume, climb, descent, distance, duration_s, total_dose = table_totals(per)
    # Made without Route.__init__, fields in order (the same object): a route with its
    # detail deferred has no coordinates, legs or steps until one is read, so there are
    # no placeholders to make and drop.
    route = object.__new__(Route)
    state = route.__dict__
    state["profile"] = profile
    state["label"] = profile.replace("_", " ")
    state["engine"] = engine
    if not detail:
        state["coordinates"] = []
    state["distance_m"] = distance
    state["duration_s"] = duration_s
    state["dose_ug"] = total_dose
    state["mean_concentration_ugm3"] = total_dose / volume if volume > 0 else 0.0
    state["climb_m"] = climb
    state["descent_m"] = descent
    if not detail:
        state["legs"] = Legs.of(())
        state["steps"] = Steps.of(())
    state["dose_change_pct"] = 0.0
    state["distance_change_pct"] = 0.0
    state["edge_path"] = e.tolist()
    if detail:
        state["_detail"] = _Detail(network, e, per)
    return route


_Built = tuple[FloatArray, list[str], npt.NDArray[np.bool_], IntArray, FloatArray]


class _Detail:
    """A route's edges and table of pieces (see ``piece_table``), from which its
    deferred fields are built.

    The first field read runs :func:`.detail_kernels.route_detail` once for all three:
    each field turns some of its arrays into Python objects.
    """

    def __init__(self, network: Network, e: IntArray, per: FloatArray) -> None:
        self.network, self.e, self.per = network, e, per
        self._built: _Built | None = None

    def built(self) -> _Built:
        """``(coordinates, names, walk, runs, locations)`` (see ``route_detail``), once."""
        if self._built is None:
            network = self.network
            arrays = network.arrays
            coordinates, name, walk, runs, locations = route_detail(
                self.e,
                self.per[START],
                self.per[END],
                arrays["edge_segment"],
                arrays["edge_reversed"],
                arrays["geom_offsets"],
                arrays["geom_lonlat"],
                arrays["segment_name"],
                network.name_keys,
                arrays["edge_mode"],
                MODE_WALK,
            )
            names = network.names_array[name].tolist()
            self._built = coordinates, names, walk, runs, locations
        return self._built

    def coordinates(self) -> list[list[float]]:
        coords: list[list[float]] = self.built()[0].tolist()
        return coords

    def legs(self) -> Legs:
        """The columns of the pieces' breakdown (see :class:`.Legs`): rows of a copy of
        the table (the steps still sum its lengths), the kernel's edges and walk flags."""
        _coordinates, names, walk, _runs, _locations = self.built()
        length, duration, dose, conc, start, end = self.per[LENGTH:].copy()
        return Legs(self.e, start, end, names, length, duration, conc, dose, walk)

    def steps(self) -> Steps:
        """A step per row of ``runs``: a run of pieces on one street, then the arrival."""
        _coordinates, names, walk, runs, locations = self.built()
        # The runs' lengths and durations: the sums over their pieces.
        run_sums = np.add.reduceat(self.per[LENGTH : DURATION + 1], runs[:-1, 0], axis=1)
        distance, duration = run_sums.tolist()
        first, code, after, before = runs.T.tolist()
        del first[-1], code[-1]  # the arrival's row: n and -1
        name = [names[k] for k in first]
        walks = walk.tolist()
        instruction = [
            _TEXT[c] + (n or "an unnamed way") + (" (walk your bike)" if walks[k] else "")
            for c, n, k in zip(code, name, first, strict=True)
        ]
        kind = [_KIND[c] for c in code]
        modifier = [_MODIFIER[c] for c in code]
        instruction.append("Arrive at your destination")
        name.append("")
        distance.append(0.0)
        duration.append(0.0)
        kind.append("arrive")
        modifier.append("")
        return Steps(
            instruction,
            name,
            distance,
            duration,
            kind,
            modifier,
            locations.tolist(),
            before,
            after,
        )
