"""Route assembly: the vectorised builders against the per-leg logic they replaced, the
deferred fields of a route, and the exact shortcuts in snapping and the large engine.

The reference functions below are the per-leg code ``result.py`` used before assembly
was vectorised (one geometry array and one cut per leg, steps from ``Leg`` objects);
the new code must give bit-identical values.
"""

from __future__ import annotations

import copy
import math
import pickle
import threading
from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np
import pytest

from airpath.errors import NoRouteError, OutsideCoverageError, SameEndpointsError
from airpath.network.store import Network
from airpath.routing.cch_large import LargeCCHEngine
from airpath.routing.engines import CCHEngine, Endpoint
from airpath.routing.result import (
    _COMPASS,
    Leg,
    Route,
    Step,
    _bearings,
    _cut,
    _modifier,
    _new_leg,
    make_steps,
    path_points,
)
from airpath.routing.router import Router
from scenario import grid_network

# -- the per-leg reference ---------------------------------------------------------------


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


def assert_matches_reference(network: Network, route: Route) -> None:
    geoms = ref_geoms(network, route.legs)
    assert route.coordinates == ref_coordinates(geoms)
    assert route.steps == ref_steps(route.legs, geoms)
    e = np.array([leg.edge_id for leg in route.legs], dtype=np.int64)
    a = np.array([leg.start for leg in route.legs])
    b = np.array([leg.end for leg in route.legs])
    points, bounds = path_points(network, e, a, b)
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


def test_cut_matches_the_per_leg_reference():
    rng = np.random.default_rng(5)
    fractions = [(0.0, 1.0), (0.0, 0.5), (0.25, 1.0), (0.25, 0.75), (0.5, 0.5), (0.3, 0.9)]
    for pts in _polylines(rng, 3000):
        for a, b in [*fractions, tuple(sorted(rng.uniform(0, 1, 2)))]:
            got, want = _cut(pts, a, b), ref_cut(pts, a, b)
            assert got.shape == want.shape
            assert (got == want).all()


def test_new_leg_is_the_dataclass_constructor():
    values = (7, 0.25, 1.0, "Mannerheimintie", 12.5, 3.25, 17.0, 0.125, False)
    fast, plain = _new_leg(*values), Leg(*values)
    assert fast == plain
    assert list(vars(fast).items()) == list(vars(plain).items())
    assert repr(fast) == repr(plain)
    assert hash(fast) == hash(plain)
    params = _new_leg.__code__.co_varnames[: _new_leg.__code__.co_argcount]
    assert params == tuple(f.name for f in fields(Leg))


def _routes(router: Router, network: Network, k: int, seed: int) -> list[Route]:
    rng = np.random.default_rng(seed)
    lat, lon = np.asarray(network.node_lat), np.asarray(network.node_lon)
    routes = []
    for i, (s, t) in enumerate(rng.integers(0, network.n_nodes, (k, 2))):
        jitter = rng.normal(0, 2e-4, 4) if i % 2 else np.zeros(4)  # inside edges, or on nodes
        o = (float(lat[s] + jitter[0]), float(lon[s] + jitter[1]))
        d = (float(lat[t] + jitter[2]), float(lon[t] + jitter[3]))
        for profile in ("shortest", "least_exposure"):
            try:
                routes += router.route(o, d, profile, alternatives=1).routes
            except (NoRouteError, SameEndpointsError, OutsideCoverageError):
                continue
    return routes


def test_steps_and_coordinates_match_the_per_leg_reference(helsinki):
    router = Router(helsinki)
    routes = _routes(router, helsinki, 40, seed=2)
    assert len(routes) > 60
    for route in routes:
        assert_matches_reference(helsinki, route)


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
                assert_matches_reference(network, route)
                checked += 1
    assert checked > 300


def test_make_steps_splits_runs_by_name_and_mode():
    # Three pieces on A (the last walked), then B: runs A, A (walk), B. Pieces go north,
    # north, east and south, each from the end of the one before.
    corners = [[0.0, 0.0], [0.0, 1e-3], [0.0, 2e-3], [1e-3, 2e-3], [1e-3, 1e-3]]
    points = np.array([corners[i + j] for i in range(4) for j in (0, 1)])
    bounds = np.array([0, 2, 4, 6, 8])
    steps = make_steps(
        ["A", "A", "A", "B"],
        [False, False, True, False],
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.array([0.5, 0.5, 0.5, 0.5]),
        points,
        bounds,
    )
    assert [s.name for s in steps] == ["A", "A", "B", ""]
    assert [s.distance_m for s in steps] == [3.0, 3.0, 4.0, 0.0]
    assert steps[0].instruction == "Head north on A"
    assert steps[1].instruction.endswith("(walk your bike)")
    assert steps[-1].maneuver["type"] == "arrive"
    assert [s.maneuver["modifier"] for s in steps] == ["north", "right", "right", ""]
    assert steps[-1].maneuver["location"] == [1e-3, 1e-3]
    assert make_steps([], [], np.zeros(0), np.zeros(0), np.zeros((0, 2)), np.zeros(1, int)) == []


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
