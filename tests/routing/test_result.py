"""Route assembly: the compiled kernels against the NumPy code they replaced, the deferred
fields of a route, and the exact shortcuts in snapping and the large engine.

The reference (tests/result_reference.py) is the NumPy assembly ``result.py`` used
before its kernels: one geometry array and one cut per leg, steps from ``Leg`` objects,
per-quantity products summed by NumPy. The new code must give the same values bit for
bit; only the bearings inside steps may differ in their last bits (see
test_bearings_match_numpy_to_the_last_bits).
"""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import threading
from dataclasses import asdict, replace
from pathlib import Path as FilePath
from typing import Any

import numpy as np
import pytest

from airpath.errors import NoRouteError, OutsideCoverageError, SameEndpointsError
from airpath.network.segments import MODE_RIDE, MODE_WALK
from airpath.network.store import Network
from airpath.routing.cch_large import LargeCCHEngine
from airpath.routing.detail_kernels import (
    DURATION,
    END,
    LENGTH,
    TOTALS,
    _bearing,
    between_totals,
    path_points,
    piece_table,
    table_totals,
)
from airpath.routing.engines import CCHEngine, Endpoint
from airpath.routing.field import PollutionField
from airpath.routing.result import Path, Route, _Detail
from airpath.routing.router import Router
from result_reference import (
    ref_bearings,
    ref_coordinates,
    ref_cut,
    ref_geoms,
    ref_legs_and_totals,
    ref_steps,
)
from scenario import grid_network


def _state(records: list[Any]) -> list[list[tuple[str, type, Any]]]:
    return [[(k, type(v), v) for k, v in vars(r).items()] for r in records]


def assert_matches_reference(
    network: Network, route: Route, field: PollutionField, offset_s: float | None = None
) -> None:
    """``route`` has the coordinates, steps, legs and totals the NumPy assembly gives
    for its pieces under ``field`` (NO2), departing ``offset_s`` after its time."""
    pieces = [(leg.edge_id, leg.start, leg.end) for leg in route.legs]
    conc, horizons_s = field.concentration_ugm3["no2"], field.horizons_s
    legs, totals = ref_legs_and_totals(network, pieces, conc, horizons_s, offset_s)
    assert route.legs == legs
    # The same objects as the dataclass constructor makes: fields in order, same types.
    assert _state(route.legs) == _state(legs)
    distance, duration, volume, climb, descent, dose = totals
    assert (route.distance_m, route.duration_s, route.dose_ug) == (distance, duration, dose)
    assert (route.climb_m, route.descent_m) == (climb, descent)
    assert route.mean_concentration_ugm3 == (dose / volume if volume > 0 else 0.0)
    assert route.edge_path == [leg.edge_id for leg in legs]
    geoms = ref_geoms(network, route.legs)
    assert route.coordinates == ref_coordinates(geoms)
    steps = ref_steps(route.legs, geoms)
    assert route.steps == steps
    assert _state(route.steps) == _state(steps)
    arrays = network.arrays
    points, bounds = path_points(
        *(np.array(column) for column in zip(*pieces, strict=True)),
        arrays["edge_segment"],
        arrays["edge_reversed"],
        arrays["geom_offsets"],
        arrays["geom_lonlat"],
    )
    for i, g in enumerate(geoms):
        piece = points[bounds[i] : bounds[i + 1]]
        assert piece.shape == g.shape
        assert (piece == g).all()


# -- builders against the reference ------------------------------------------------------


def _polylines(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        k = int(rng.integers(2, 10))
        pts = np.column_stack(
            [24.9 + rng.normal(0, 1e-3, k).cumsum(), 60.1 + rng.normal(0, 1e-3, k).cumsum()]
        )
        if i % 7 == 0:
            pts[int(rng.integers(0, k))] = pts[0]  # a repeated point
        if i % 11 == 0:
            pts[:] = pts[0]  # no length at all
        out.append(pts)
    # Evenly spaced points on a meridian: the fractions below fall exactly on vertices.
    out.append(np.column_stack([np.full(5, 24.9), 60.1 + 1e-3 * np.arange(5)]))
    return out


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 128, 129, 136, 255, 256, 1000, 4099])
def test_totals_are_numpys_pairwise_sums_bit_for_bit(n):
    # Rows longer than 128 values take the kernel's split (walked with a stack); routes
    # on the grid have hundreds of pieces. Values of very different sizes make any other
    # order of additions show in the last bits.
    rng = np.random.default_rng(n)
    per = rng.lognormal(0.0, 3.0, (END + 1, n)) * rng.choice([1.0, 1e-8, 1e8], (END + 1, n))
    assert table_totals(per) == tuple(per[:TOTALS].sum(axis=1).tolist())


@pytest.mark.parametrize("n", [0, 1, 8, 129, 300])
def test_totals_of_an_engine_answer_are_the_route_tables_bit_for_bit(n):
    # A hierarchy's answer (first piece, whole edges, last piece) summed in one call
    # gives the bits piece_table's table gives, also where an end piece is too short to keep
    # (left out of both sums and of the edges) and past the 128 values of one block.
    rng = np.random.default_rng(n)
    m = 1000
    length = rng.lognormal(3.0, 2.0, m)
    inhaled = rng.lognormal(-3.0, 2.0, m)
    conc = rng.lognormal(3.0, 1.0, m) * rng.choice([1.0, 1e-6, 1e6], m)
    edges = rng.integers(0, m, n).tolist()
    for first_a, last_b in [(0.3, 0.6), (1.0, 0.6), (0.3, 0.0), (1.0 - 1e-13, 1e-13)]:
        first = (int(rng.integers(0, m)), first_a, 1.0)
        last = (int(rng.integers(0, m)), 0.0, last_b)
        path = Path.between(first, edges, last)
        quantities = (length, length, inhaled, length, length, conc)
        e, per = piece_table(path.e, path.a, path.b, quantities)
        edge, distance, dose = between_totals(
            np.array(edges, dtype=np.int64), first, last, quantities
        )
        assert (distance, dose) == (table_totals(per)[3], table_totals(per)[5])
        assert edge.tolist() == e.tolist()


def test_cut_matches_the_per_leg_reference():
    # Each polyline is a segment with an edge each way; every cut of it is one piece.
    rng = np.random.default_rng(5)
    lines = _polylines(rng, 3000)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in lines])])
    geom = np.concatenate(lines)
    segment = np.repeat(np.arange(len(lines)), 2)
    reversed_ = np.tile([False, True], len(lines))
    fractions = [(0.0, 1.0), (0.0, 0.5), (0.25, 1.0), (0.25, 0.75), (0.5, 0.5), (0.3, 0.9)]
    for s, pts in enumerate(lines):
        cuts = [*fractions, tuple(sorted(rng.uniform(0, 1, 2)))]
        for rev in (0, 1):
            e = np.full(len(cuts), 2 * s + rev)
            a, b = (np.array(column) for column in zip(*cuts, strict=True))
            points, bounds = path_points(e, a, b, segment, reversed_, offsets, geom)
            for i, (fa, fb) in enumerate(cuts):
                want = ref_cut(pts[::-1] if rev else pts, fa, fb)
                got = points[bounds[i] : bounds[i + 1]]
                assert got.shape == want.shape
                assert (got == want).all()


def test_bearings_match_numpy_to_the_last_bits():
    # NumPy's SIMD sin, cos and arctan2 and the C library's, which the kernel calls, may
    # differ by an ulp. The bearing formula subtracts nearly equal products, so an ulp of
    # them becomes about 1e-16 / (segment length in radians) of the bearing: under 1e-9°
    # for segments of 1e-4° (some 10 m) and more, as here. Steps carry bearings rounded
    # to whole degrees, which such a difference changes only within 1e-9° of a boundary.
    rng = np.random.default_rng(3)
    p = np.column_stack([rng.uniform(-180, 180, 20000), rng.uniform(-80, 80, 20000)])
    step = rng.choice([-1.0, 1.0], (20000, 2)) * 10.0 ** rng.uniform(-4, -1, (20000, 2))
    q = p + step
    want = ref_bearings(p, q)
    got = np.array([_bearing(p[i], q[i]) for i in range(len(p))])
    diff = np.abs(got - want)
    assert np.minimum(diff, 360.0 - diff).max() < 1e-9


def _routes(router: Router, network: Network, k: int, seed: int) -> list[Route]:
    rng = np.random.default_rng(seed)
    lat, lon = np.asarray(network.node_lat), np.asarray(network.node_lon)
    routes = []
    for i, (s, t) in enumerate(rng.integers(0, network.n_nodes, (k, 2))):
        jitter = rng.normal(0, 2e-4, 4) if i % 2 else np.zeros(4)  # inside edges, or on nodes
        o = (float(lat[s] + jitter[0]), float(lon[s] + jitter[1]))
        d = (float(lat[t] + jitter[2]), float(lon[t] + jitter[3]))
        for profile in ("shortest", "fastest", "least_exposure"):
            try:
                routes += router.route(o, d, profile, alternatives=1).routes
            except (NoRouteError, SameEndpointsError, OutsideCoverageError):
                continue
    return routes


def test_routes_match_the_numpy_assembly(helsinki):
    router = Router(helsinki)
    routes = _routes(router, helsinki, 60, seed=2)
    assert len(routes) > 150
    assert {r.engine for r in routes} == {"cch", "flexible"}
    for route in routes:
        assert_matches_reference(helsinki, route, router.field)


def test_time_dependent_routes_match_the_numpy_assembly(helsinki):
    # Concentrations triple over the first half hour: each piece is at the value of the
    # middle of its time on its edge.
    router = Router(helsinki)
    prior = np.asarray(helsinki.edge_prior_ugm3, dtype=float)
    valid = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    conc = {p: np.stack([prior[k], 3 * prior[k]]) for k, p in enumerate(helsinki.pollutants)}
    router.apply_field(
        PollutionField.create("ramp", valid, conc, n_edges=helsinki.n_edges, horizons_min=(0, 30))
    )
    lat, lon = np.asarray(helsinki.node_lat), np.asarray(helsinki.node_lon)
    rng = np.random.default_rng(8)
    depart = valid + dt.timedelta(minutes=10)
    checked = 0
    for s, t in rng.integers(0, helsinki.n_nodes, (20, 2)).tolist():
        try:
            route = router.route((lat[s], lon[s]), (lat[t], lon[t]), depart=depart).best
        except (NoRouteError, SameEndpointsError):
            continue
        assert route.engine == "time-dependent"
        assert_matches_reference(helsinki, route, router.field, offset_s=600.0)
        checked += 1
    assert checked > 10


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    """A scenario map: named streets, an unnamed one, a footway (walked), a one-way, and
    points 1 and 2 that are not nodes (routes from them start inside an edge)."""
    ascii_map = """
        a   b   c   d
            1
        e   f   g   h
                  2
        i   j   k   l
    """
    ways = [
        {"nodes": "abcd", "name": "High Street"},
        {"nodes": "efgh", "name": "Mill Lane"},
        {"nodes": "ijkl", "name": ""},
        {"nodes": "aei", "name": "West Road"},
        {"nodes": "bf", "name": "High Street"},
        {"nodes": "fj", "name": "Church Path", "highway": "footway"},
        {"nodes": "cgk", "name": "Station Road", "oneway": "yes"},
        {"nodes": "dhl", "name": "East Road"},
    ]
    ways = [{"highway": "residential", **w} for w in ways]
    network, points = grid_network(ascii_map, ways, tmp_path_factory.mktemp("town"))
    return network, points, Router(network)


def test_steps_on_a_scenario_map_match_the_per_leg_reference(town):
    network, points, router = town
    labels = sorted(points)
    checked = 0
    for frm in labels:
        for to in labels:
            if frm == to:
                continue
            for profile in ("shortest", "fastest", "comfort"):
                route = router.route(points[frm], points[to], profile).best
                assert_matches_reference(network, route, router.field)
                checked += 1
    assert checked > 300


def test_steps_split_runs_by_name_and_mode():
    # Four one-edge segments: three on A (the last walked), then B: runs A, A (walk), B.
    # They go north, north, east and south, each from the end of the one before. The
    # names list A twice (nothing makes them unique): the second A is the same street.
    corners = [[0.0, 0.0], [0.0, 1e-3], [0.0, 2e-3], [1e-3, 2e-3], [1e-3, 1e-3]]
    arrays = {
        "geom_lonlat": np.array([corners[i + j] for i in range(4) for j in (0, 1)]),
        "geom_offsets": np.array([0, 2, 4, 6, 8]),
        "edge_segment": np.arange(4),
        "edge_reversed": np.zeros(4, dtype=bool),
        "segment_name": np.array([0, 2, 0, 1]),
        "edge_mode": np.array([MODE_RIDE, MODE_RIDE, MODE_WALK, MODE_RIDE]),
    }
    network = Network(FilePath("."), {}, arrays, ("A", "B", "A"))
    per = np.zeros((END + 1, 4))
    per[LENGTH], per[DURATION], per[END] = [1.0, 2.0, 3.0, 4.0], 0.5, 1.0
    steps = _Detail(network, np.arange(4), per).steps()
    assert [s.name for s in steps] == ["A", "A", "B", ""]
    assert [s.distance_m for s in steps] == [3.0, 3.0, 4.0, 0.0]
    assert steps[0].instruction == "Head north on A"
    assert steps[1].instruction.endswith("(walk your bike)")
    assert steps[-1].maneuver["type"] == "arrive"
    assert [s.maneuver["modifier"] for s in steps] == ["north", "right", "right", ""]
    assert steps[-1].maneuver["location"] == [1e-3, 1e-3]


# -- deferred fields ---------------------------------------------------------------------


def _fresh(router: Router) -> Route:
    return router.route((60.1780, 24.9370), (60.1655, 24.9520), "least_exposure").best


def test_deferred_fields_are_built_on_first_read(helsinki):
    router = Router(helsinki)
    route = _fresh(router)
    assert not {"coordinates", "legs", "steps"} & vars(route).keys()
    legs = route.legs
    assert legs is route.legs  # built once
    assert "steps" not in vars(route)
    assert route.steps[-1].maneuver["type"] == "arrive"
    assert len(route.coordinates) >= 2
    assert "_detail" not in vars(route)  # all built: the builder is dropped
    with pytest.raises(AttributeError):
        _ = route.no_such_field  # type: ignore[attr-defined]


def test_a_deferred_route_equals_its_eager_twin(helsinki):
    router = Router(helsinki)
    eager = _fresh(router)
    twin = replace(eager)  # reads every field: a plain dataclass with the built values
    assert "legs" in vars(twin)
    assert _fresh(router) == twin
    assert repr(_fresh(router)) == repr(twin)
    assert asdict(_fresh(router)) == asdict(twin)
    assert _fresh(router).to_feature() == twin.to_feature()
    for clone in (copy.copy(_fresh(router)), copy.deepcopy(_fresh(router))):
        assert clone == twin
    restored = pickle.loads(pickle.dumps(_fresh(router)))
    assert restored == twin
    assert "_detail" not in vars(restored)


def test_threads_reading_a_deferred_field_get_the_same_object(helsinki):
    router = Router(helsinki)
    for _ in range(20):
        route = _fresh(router)
        seen: list[object] = []

        def read(route: Route = route, seen: list[object] = seen) -> None:
            seen.append(route.steps)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(s is seen[0] for s in seen)


# -- snapping and the large engine -------------------------------------------------------


def test_large_engine_searches_repeated_ends_once_with_the_same_answer(helsinki):
    w = np.asarray(helsinki.edge_length_m, dtype=np.float64)
    large = LargeCCHEngine(helsinki).customise(w, "shortest")
    small = CCHEngine(helsinki).customise(w, "shortest")
    rng = np.random.default_rng(4)
    piece = (0, 0.0, 1.0)
    for s1, s2, t1, t2 in rng.integers(0, helsinki.n_nodes, (100, 4)).tolist():
        src = [Endpoint(s1, 5.0, piece), Endpoint(s2, 0.0, piece)]
        tgt = [Endpoint(t1, 0.0, piece), Endpoint(t2, 7.0, piece)]
        once = large.query(src, tgt)
        assert large.query([src[0], *src, src[1]], [*tgt, tgt[0], tgt[1]]) == once
        assert large.query([src[1], src[1]], [tgt[0], tgt[0]]) == large.query([src[1]], [tgt[0]])
        dist, _, _ = small.query(src, tgt)
        if dist is not None and once[0] is not None:
            assert once[0] / large.scale == pytest.approx(dist / small.scale, rel=1e-6)
