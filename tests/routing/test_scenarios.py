"""Scenario tests in the manner of OSRM's ``features/bicycle/*.feature``.

Each map is drawn in ASCII (one character = 100 m, see ``tests/scenario.py``), written
as a real OpenStreetMap XML file, imported with ``read_osm`` + ``build_network`` and
routed with the real :class:`Router`. A way's name is its node string unless it says
otherwise, so a route reads as the ways it travels (``"db,cd,ac"``) and ``modes`` says
how each was travelled (``ride`` or ``walk``, pushing the bike).

Every map is built once per module, on first use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyproj import Geod

from airpath.errors import OutsideCoverageError, SameEndpointsError
from airpath.network.store import Network
from airpath.routing.result import Route
from airpath.routing.router import Router
from scenario import LatLon, grid_network, path_letters, route_names, summarise

# -- maps -------------------------------------------------------------------------------


def way(nodes: str, *tags: str) -> dict[str, str]:
    """``way("ab", "highway=primary", "oneway=yes")``; highway defaults to residential."""
    out = {"nodes": nodes, "highway": "residential"}
    for tag in tags:
        k, v = tag.split("=", 1)
        out[k] = v
    return out


# ab is the street under test (400 m); a–c–d–b is a two-way detour of 600 m.
SQUARE = """
    a   b
    c   d
"""


def square(*ab_tags: str) -> list[dict[str, str]]:
    return [way("ab", *ab_tags), way("ac"), way("cd"), way("db")]


# ab (200 m) with a 1000 m detour: riding round (225 s) is slower than walking ab (144 s).
TALL = """
    a b



    c d
"""

# As SQUARE, plus two dead ends hanging off the right: b→e and d→f, both one-way outwards.
SQUARE_DEAD_ENDS = """
    a   b   e
    c   d   f
"""

# A square ring a→b→c→d→a (ab and cd 400 m, bc and da 200 m) with spokes x–a and b–y.
RING = """
    x a   b y

      d   c
"""


def ring(*ring_tags: str) -> list[dict[str, str]]:
    return [way("abcda", "highway=tertiary", *ring_tags), way("xa"), way("by")]


# bc (200 m) is the way under test between two streets; b–e–f–c is a 1000 m ridden detour:
# 225 s riding, against 144 s walking 200 m of footway and 360 s climbing 200 m of steps.
WALKWAY = """
    a   b c   d



        e f
"""


def walkway(*bc_tags: str) -> list[dict[str, str]]:
    return [way("ab"), way("bc", *bc_tags), way("cd"), way("be"), way("ef"), way("fc")]


# The square a–b–d–c and, 283 m south-east of d, a street e–f connected to nothing.
ISLAND = """
    a   b
    c   d

          e   f
"""

# Points 1 and 2 lie inside ab (800 m), point 3 in the middle of bc (600 m).
MIDDLE = """
    a 1   2 b


            3


            c
"""

# Points 1 and 2 inside the one-way ab (600 m); the way back round is 1200 m from 2 to 1.
MIDDLE_ONEWAY = """
    a 1 2 b
    c     d
"""

# ab (800 m) against a 1000 m detour a–c–d–b; the far variant's detour is 2400 m.
WIDE = """
    a       b
    c       d
"""
WIDE_FAR = "a       b" + "\n" * 8 + "c       d"


def wide(cd_highway: str) -> list[dict[str, str]]:
    return [way("ab", "highway=primary"), way("ac"), way("cd", f"highway={cd_highway}"), way("db")]


MAPS: dict[str, tuple[str, list[dict[str, str]]]] = {
    "two-way": ("a   b   c\n\n        d", [way("abc"), way("cd")]),
    "plain square": (SQUARE, square()),
    "oneway=yes": (SQUARE, square("oneway=yes")),
    "oneway=yes, long detour": (TALL, square("oneway=yes")),
    "oneway=-1": (SQUARE, square("oneway=-1")),
    "oneway=reverse": (SQUARE, square("oneway=reverse")),
    "primary oneway": (
        SQUARE_DEAD_ENDS,
        [
            *square("highway=primary", "oneway=yes"),
            way("be", "highway=primary", "oneway=yes"),
            way("df", "oneway=yes"),
        ],
    ),
    "primary oneway, oneway:bicycle=no": (
        SQUARE,
        square("highway=primary", "oneway=yes", "oneway:bicycle=no"),
    ),
    "oneway:bicycle=no": (SQUARE, square("oneway=yes", "oneway:bicycle=no")),
    "cycleway=opposite_lane": (SQUARE, square("oneway=yes", "cycleway=opposite_lane")),
    "cycleway=opposite": (SQUARE, square("oneway=yes", "cycleway=opposite")),
    "cycleway:left=opposite_track": (
        SQUARE,
        square("oneway=yes", "cycleway:left=opposite_track"),
    ),
    "oneway:bicycle=yes": (SQUARE, square("oneway:bicycle=yes")),
    "roundabout": (RING, ring("junction=roundabout")),
    "primary roundabout": (RING, ring("junction=roundabout", "highway=primary")),
    "ring road": (RING, ring()),
    "junction=circular": (RING, ring("junction=circular")),
    "footway": (WALKWAY, walkway("highway=footway")),
    "pedestrian": (WALKWAY, walkway("highway=pedestrian")),
    "steps": (WALKWAY, walkway("highway=steps")),
    "footway, bicycle=yes": (WALKWAY, walkway("highway=footway", "bicycle=yes")),
    "motorway": (SQUARE, square("highway=motorway")),
    "access=private": (SQUARE, square("access=private")),
    "access=private, bicycle=yes": (SQUARE, square("access=private", "bicycle=yes")),
    "bicycle=no": (SQUARE, square("bicycle=no")),
    "bicycle=use_sidepath": (SQUARE, square("bicycle=use_sidepath")),
    "loop street": (RING, [way("xa"), way("abcda")]),
    "island": (ISLAND, [*square(), way("ef")]),
    "middle": (MIDDLE, [way("ab"), way("bc")]),
    "middle, oneway": (MIDDLE_ONEWAY, square("oneway=yes")),
    "middle, primary oneway": (MIDDLE_ONEWAY, square("highway=primary", "oneway=yes")),
    "cycleway or primary": (WIDE, wide("cycleway")),
    "primary or residential": (WIDE, wide("residential")),
    "primary or far residential": (WIDE_FAR, wide("residential")),
}


@dataclass(frozen=True)
class World:
    network: Network
    points: dict[str, LatLon]
    router: Router

    def route(self, frm: str, to: str, profile: str = "shortest") -> Route:
        return self.router.route(self.points[frm], self.points[to], profile).best


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], World]:
    built: dict[str, World] = {}

    def get(name: str) -> World:
        if name not in built:
            ascii_map, ways = MAPS[name]
            folder: Path = tmp_path_factory.mktemp(re.sub(r"\W+", "_", name))
            network, points = grid_network(ascii_map, ways, folder)
            built[name] = World(network, points, Router(network))
        return built[name]

    return get


def check(w: World, frm: str, to: str, profile: str, route: str, modes: str) -> None:
    got = summarise(w.route(frm, to, profile))
    assert got == (route, modes), f"{frm}→{to} ({profile})"


# -- the map itself ---------------------------------------------------------------------


def test_grid_spacing_is_100_m_per_character(world):
    w = world("plain square")
    (lat_a, lon_a), (lat_c, lon_c) = w.points["a"], w.points["c"]
    assert Geod(ellps="WGS84").inv(lon_a, lat_a, lon_c, lat_c)[2] == pytest.approx(100, abs=0.05)
    for e in range(w.network.n_edges):
        want = 400.0 if w.network.edge_name(e) in ("ab", "cd") else 100.0
        assert float(w.network.edge_length_m[e]) == pytest.approx(want, abs=0.05)


# -- two-way streets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frm", "to", "names", "distance_m"),
    [
        ("a", "c", ["abc"], 800),
        ("c", "a", ["abc"], 800),
        ("a", "d", ["abc", "cd"], 1000),
        ("d", "a", ["cd", "abc"], 1000),
        ("b", "d", ["abc", "cd"], 600),
        ("d", "b", ["cd", "abc"], 600),
    ],
)
def test_two_way_streets_are_ridden_both_ways(world, frm, to, names, distance_m):
    w = world("two-way")
    a, b = w.points[frm], w.points[to]
    assert route_names(w.router, a, b) == names
    best = w.router.route(a, b, "shortest").best
    assert best.distance_m == pytest.approx(distance_m, abs=1.0)
    assert not any(leg.walk for leg in best.legs)


# -- one-way streets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("map_name", "frm", "to", "profile", "route", "modes"),
    [
        ("oneway=yes", "a", "b", "shortest", "ab", "ride"),
        ("oneway=yes", "a", "b", "fastest", "ab", "ride"),
        # Against the flow: push the bike 400 m, or ride 600 m round the block.
        ("oneway=yes", "b", "a", "shortest", "ab", "walk"),
        ("oneway=yes", "b", "a", "fastest", "db,cd,ac", "ride,ride,ride"),
        ("oneway=yes", "b", "a", "comfort", "db,cd,ac", "ride,ride,ride"),
        # When the way round is long, walking 200 m back is faster than riding 1000 m.
        ("oneway=yes, long detour", "a", "b", "fastest", "ab", "ride"),
        ("oneway=yes, long detour", "b", "a", "shortest", "ab", "walk"),
        ("oneway=yes, long detour", "b", "a", "fastest", "ab", "walk"),
        ("oneway=-1", "b", "a", "shortest", "ab", "ride"),
        ("oneway=-1", "a", "b", "shortest", "ab", "walk"),
        ("oneway=-1", "a", "b", "fastest", "ac,cd,db", "ride,ride,ride"),
        ("oneway=reverse", "b", "a", "shortest", "ab", "ride"),
        ("oneway=reverse", "a", "b", "shortest", "ab", "walk"),
    ],
)
def test_oneway(world, map_name, frm, to, profile, route, modes):
    check(world(map_name), frm, to, profile, route, modes)


@pytest.mark.parametrize(
    ("map_name", "frm", "to", "profile", "route", "modes"),
    [
        ("primary oneway", "a", "b", "shortest", "ab", "ride"),
        # No pushing against the flow of a primary road: round the block, even when short.
        ("primary oneway", "b", "a", "shortest", "db,cd,ac", "ride,ride,ride"),
        ("primary oneway", "b", "a", "fastest", "db,cd,ac", "ride,ride,ride"),
        ("primary oneway", "d", "f", "shortest", "df", "ride"),
        ("primary oneway", "f", "d", "shortest", "df", "walk"),
        ("primary oneway, oneway:bicycle=no", "b", "a", "shortest", "ab", "ride"),
    ],
)
def test_no_pushing_against_a_primary_oneway(world, map_name, frm, to, profile, route, modes):
    check(world(map_name), frm, to, profile, route, modes)


def test_primary_oneway_dead_end_is_not_in_the_network(world):
    # b→e can be ridden but never left (no pushing back on a primary), so e falls outside
    # the strongly connected network; the residential dead end d→f stays (walk back).
    w = world("primary oneway")
    assert "be" not in w.network.names
    assert "df" in w.network.names
    with pytest.raises(OutsideCoverageError):
        Router(w.network, max_snap_m=50.0).route(w.points["b"], w.points["e"], "shortest")
    # Within reach, e snaps to f, 100 m away on the dead end that survived.
    result = w.router.route(w.points["b"], w.points["e"], "shortest")
    assert summarise(result.best) == ("db,df", "ride,ride")
    assert result.meta["snap_distance_m"][1] == pytest.approx(100.0, abs=0.5)


@pytest.mark.parametrize(
    "map_name",
    [
        "oneway:bicycle=no",
        "cycleway=opposite_lane",
        "cycleway=opposite",
        "cycleway:left=opposite_track",
    ],
)
@pytest.mark.parametrize("profile", ["shortest", "fastest"])
@pytest.mark.parametrize(("frm", "to"), [("a", "b"), ("b", "a")])
def test_contraflow_for_bicycles_is_ridden_both_ways(world, map_name, profile, frm, to):
    check(world(map_name), frm, to, profile, "ab", "ride")


def test_oneway_for_bicycles_only(world):
    w = world("oneway:bicycle=yes")
    check(w, "a", "b", "shortest", "ab", "ride")
    check(w, "b", "a", "fastest", "db,cd,ac", "ride,ride,ride")


# -- roundabouts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("map_name", "frm", "to", "profile", "path", "modes"),
    [
        ("roundabout", "x", "y", "shortest", "xaby", "ride,ride,ride"),
        ("roundabout", "x", "y", "fastest", "xaby", "ride,ride,ride"),
        # Against the roundabout: push 400 m back, or ride on round 800 m of it.
        ("roundabout", "y", "x", "shortest", "ybax", "ride,walk,ride"),
        ("roundabout", "y", "x", "fastest", "ybcdax", "ride,ride,ride"),
        ("primary roundabout", "y", "x", "shortest", "ybcdax", "ride,ride,ride"),
        # The same ring without junction=roundabout is an ordinary two-way street.
        ("ring road", "y", "x", "shortest", "ybax", "ride,ride,ride"),
    ],
)
def test_roundabout_is_one_way(world, map_name, frm, to, profile, path, modes):
    w = world(map_name)
    best = w.route(frm, to, profile)
    assert (path_letters(best, w.points), summarise(best)[1]) == (path, modes)


def test_circular_junction_is_one_way(world):
    w = world("junction=circular")
    best = w.route("y", "x", "shortest")
    assert (path_letters(best, w.points), summarise(best)[1]) == ("ybax", "ride,walk,ride")


# -- footways and steps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("map_name", "frm", "to", "profile", "route", "modes"),
    [
        ("footway", "a", "d", "shortest", "ab,bc,cd", "ride,walk,ride"),
        ("footway", "d", "a", "shortest", "cd,bc,ab", "ride,walk,ride"),
        ("footway", "a", "d", "fastest", "ab,bc,cd", "ride,walk,ride"),
        ("pedestrian", "a", "d", "shortest", "ab,bc,cd", "ride,walk,ride"),
        ("footway, bicycle=yes", "a", "d", "shortest", "ab,bc,cd", "ride,ride,ride"),
        ("footway, bicycle=yes", "d", "a", "fastest", "cd,bc,ab", "ride,ride,ride"),
        ("steps", "a", "d", "shortest", "ab,bc,cd", "ride,walk,ride"),
        # 200 m of steps take 360 s; riding 1000 m round takes 225 s.
        ("steps", "a", "d", "fastest", "ab,be,ef,fc,cd", "ride,ride,ride,ride,ride"),
        ("steps", "d", "a", "fastest", "cd,fc,ef,be,ab", "ride,ride,ride,ride,ride"),
    ],
)
def test_walkways(world, map_name, frm, to, profile, route, modes):
    check(world(map_name), frm, to, profile, route, modes)


@pytest.mark.parametrize(
    ("map_name", "seconds_per_m"),
    [("footway", 3.6 / 5.0), ("pedestrian", 3.6 / 5.0), ("steps", 3.6 / 2.0)],
)
def test_walking_speed(world, map_name, seconds_per_m):
    leg = next(leg for leg in world(map_name).route("a", "d").legs if leg.walk)
    assert leg.length_m == pytest.approx(200.0, abs=0.5)
    assert leg.duration_s == pytest.approx(leg.length_m * seconds_per_m, rel=1e-6)


# -- access -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("map_name", "in_network", "route"),
    [
        ("plain square", True, "ab"),
        ("motorway", False, "ac,cd,db"),
        ("access=private", False, "ac,cd,db"),
        ("access=private, bicycle=yes", True, "ab"),
        ("bicycle=no", False, "ac,cd,db"),
        ("bicycle=use_sidepath", False, "ac,cd,db"),
    ],
)
def test_access(world, map_name, in_network, route):
    w = world(map_name)
    assert ("ab" in w.network.names) is in_network
    check(w, "a", "b", "shortest", route, ",".join(["ride"] * len(route.split(","))))


# -- disconnected parts -----------------------------------------------------------------


def test_island_is_dropped(world):
    w = world("island")
    assert "ef" not in w.network.names
    assert w.network.n_nodes == 4


def test_point_on_island_snaps_to_the_network_within_reach(world):
    w = world("island")
    result = Router(w.network, max_snap_m=500.0).route(w.points["b"], w.points["e"], "shortest")
    assert summarise(result.best) == ("db", "ride")
    assert result.best.distance_m == pytest.approx(100.0, abs=1.0)
    assert result.meta["snap_distance_m"][1] == pytest.approx(200 * math.sqrt(2), abs=0.5)


@pytest.mark.parametrize(("frm", "to"), [("b", "e"), ("e", "b"), ("f", "a")])
def test_point_on_island_beyond_reach_is_outside_coverage(world, frm, to):
    w = world("island")
    with pytest.raises(OutsideCoverageError):
        Router(w.network, max_snap_m=250.0).route(w.points[frm], w.points[to], "shortest")


def test_loop_street_attached_at_one_node_is_kept(world):
    # abcda is a 1200 m residential loop joined to the rest only at a: c, 600 m round the
    # loop from a either way, should be reachable instead of snapping 446 m away to xa.
    w = world("loop street")
    assert "abcda" in w.network.names
    result = w.router.route(w.points["x"], w.points["c"], "shortest")
    assert result.meta["snap_distance_m"][1] == pytest.approx(0.0, abs=0.5)
    assert result.best.distance_m == pytest.approx(800.0, abs=1.0)


# -- starting and ending inside edges ---------------------------------------------------


@pytest.mark.parametrize(
    ("frm", "to", "legs"),
    [
        # (way, metres) per leg: the first and last legs are the parts of their edges.
        ("1", "3", [("ab", 600), ("bc", 300)]),
        ("3", "1", [("bc", 300), ("ab", 600)]),
        ("2", "3", [("ab", 200), ("bc", 300)]),
        ("1", "c", [("ab", 600), ("bc", 600)]),
        ("a", "3", [("ab", 800), ("bc", 300)]),
        # On the same edge: one leg, either way along it.
        ("1", "2", [("ab", 400)]),
        ("2", "1", [("ab", 400)]),
        ("a", "2", [("ab", 600)]),
    ],
)
def test_route_starts_and_ends_inside_edges(world, frm, to, legs):
    best = world("middle").route(frm, to)
    got = [(leg.name, leg.length_m) for leg in best.legs]
    assert [name for name, _ in got] == [name for name, _ in legs]
    for (_, length), (_, want) in zip(got, legs, strict=True):
        assert length == pytest.approx(want, abs=1.0)
    assert best.distance_m == pytest.approx(sum(m for _, m in legs), abs=1.0)


def _east(point: LatLon, metres: float) -> LatLon:
    lon, lat, _ = Geod(ellps="WGS84").fwd(point[1], point[0], 90.0, metres)
    return lat, lon


@pytest.mark.parametrize("offset_m", [0.0, 0.5])
def test_same_place_is_rejected(world, offset_m):
    w = world("middle")
    with pytest.raises(SameEndpointsError):
        w.router.route(w.points["1"], _east(w.points["1"], offset_m), "shortest")


def test_two_metres_apart_is_a_two_metre_route(world):
    w = world("middle")
    best = w.router.route(w.points["1"], _east(w.points["1"], 2.0), "shortest").best
    assert [leg.name for leg in best.legs] == ["ab"]
    assert best.distance_m == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(
    ("map_name", "frm", "to", "profile", "route", "modes", "distance_m"),
    [
        ("middle, oneway", "1", "2", "shortest", "ab", "ride", 200),
        # Walking 200 m back (144 s) beats riding 1200 m round the block (270 s).
        ("middle, oneway", "2", "1", "shortest", "ab", "walk", 200),
        ("middle, oneway", "2", "1", "fastest", "ab", "walk", 200),
        ("middle, primary oneway", "1", "2", "shortest", "ab", "ride", 200),
        (
            "middle, primary oneway",
            "2",
            "1",
            "shortest",
            "ab,db,cd,ac,ab",
            "ride,ride,ride,ride,ride",
            1200,
        ),
    ],
)
def test_inside_a_oneway_edge(world, map_name, frm, to, profile, route, modes, distance_m):
    best = world(map_name).route(frm, to, profile)
    assert summarise(best) == (route, modes)
    assert best.distance_m == pytest.approx(distance_m, abs=1.0)


# -- comfort and exposure ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("map_name", "profile", "route"),
    [
        # 800 m of primary against 800 m of cycleway plus 200 m of residential links.
        ("cycleway or primary", "shortest", "ab"),
        ("cycleway or primary", "fastest", "ab"),
        ("cycleway or primary", "comfort", "ac,cd,db"),
        ("cycleway or primary", "least_exposure", "ac,cd,db"),
        # Primary roads carry twice the placeholder NO2 of residential streets: a 25 %
        # detour is worth it, a 200 % one is not.
        ("primary or residential", "shortest", "ab"),
        ("primary or residential", "fastest", "ab"),
        ("primary or residential", "least_exposure", "ac,cd,db"),
        ("primary or far residential", "least_exposure", "ab"),
    ],
)
def test_profiles_choose_between_primary_and_quieter_ways(world, map_name, profile, route):
    w = world(map_name)
    assert summarise(w.route("a", "b", profile))[0] == route
