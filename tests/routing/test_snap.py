"""Snapping: the grid of line pieces finds what an R-tree (shapely's STRtree) finds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from airpath.errors import InputError, OutsideCoverageError
from airpath.network.store import Network
from airpath.routing.snap import EARTH_RADIUS_M, Snap, Snapper
from airpath.routing.snapgrid import PieceGrid


def _reference(snapper: Snapper, network: Network) -> tuple[shapely.STRtree, np.ndarray]:
    """An STRtree over the same rideable lines, in the snapper's projection."""
    off = np.asarray(network.geom_offsets)
    lonlat = np.asarray(network.geom_lonlat)
    lines = [
        shapely.linestrings(snapper._project(lonlat[off[s] : off[s + 1]]))
        for s in snapper._segments.tolist()
    ]
    arr = np.array(lines, dtype=object)
    return shapely.STRtree(arr), arr


def test_snaps_match_an_rtree_on_a_real_network(helsinki: Network) -> None:
    snapper = Snapper(helsinki, 500.0)
    tree, lines = _reference(snapper, helsinki)
    lat0, lon0, lat1, lon1 = (helsinki.manifest["bbox"][i] for i in (1, 0, 3, 2))
    rng = np.random.default_rng(3)
    lat = rng.uniform(lat0, lat1, 3000)
    lon = rng.uniform(lon0, lon1, 3000)
    node = rng.integers(0, helsinki.n_nodes, 300)  # also exactly on junctions
    lat = np.concatenate([lat, np.asarray(helsinki.node_lat)[node]])
    lon = np.concatenate([lon, np.asarray(helsinki.node_lon)[node]])
    xy = np.column_stack([np.radians(lon) * snapper._cos0, np.radians(lat)]) * EARTH_RADIUS_M
    pts = shapely.points(xy)
    (which, _), want = tree.query_nearest(pts, return_distance=True, all_matches=False)
    assert (which == np.arange(len(pts))).all()
    checked = 0
    for i in range(len(pts)):
        if want[i] > 500.0:
            with pytest.raises(OutsideCoverageError):
                snapper.snap(float(lat[i]), float(lon[i]))
            continue
        snap = snapper.snap(float(lat[i]), float(lon[i]))
        plain = Snap(**vars(snap))  # made without Snap.__init__: the same object
        assert snap == plain
        assert list(vars(snap).items()) == list(vars(plain).items())
        assert snap.distance_m == pytest.approx(want[i], abs=1e-6)
        # The segment chosen is at that distance (ties may pick another equally near one),
        # and the snapped point is on it, at the fraction of its length it reports.
        line = lines[int(np.flatnonzero(snapper._segments == snap.segment)[0])]
        assert shapely.distance(line, pts[i]) == pytest.approx(want[i], abs=1e-6)
        at = np.array([math.radians(snap.lon) * snapper._cos0, math.radians(snap.lat)])
        at_pt = shapely.points(at * EARTH_RADIUS_M)
        assert shapely.distance(line, at_pt) < 1e-6
        assert shapely.line_locate_point(line, at_pt) == pytest.approx(
            snap.fraction * shapely.length(line), abs=1e-6
        )
        checked += 1
    assert checked > 2000


def _centimetres(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(int(lo * 100), int(hi * 100)).map(lambda v: v / 100)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(_centimetres(0, 2000), _centimetres(0, 1500)), min_size=2, max_size=6),
        min_size=1,
        max_size=12,
    ),
    st.lists(
        st.tuples(_centimetres(-800, 2800), _centimetres(-800, 2300)), min_size=1, max_size=20
    ),
    st.floats(1.0, 3000.0),
)
def test_grid_nearest_is_the_true_nearest_piece(
    lines: list[list[tuple[float, float]]],
    queries: list[tuple[float, float]],
    max_d: float,
) -> None:
    xy = np.array([p for line in lines for p in line], dtype=np.float64)
    offsets = np.concatenate([[0], np.cumsum([len(line) for line in lines])])
    grid = PieceGrid.build(xy, offsets)
    q = np.array(queries, dtype=np.float64)
    found = grid.locate(q[:, 0], q[:, 1], max_d)
    for i, (x, y) in enumerate(queries):
        true = min(_to_segment(x, y, a, b) for line in lines for a, b in itertools.pairwise(line))
        line_i, _, px, py, dist = found[i].tolist()
        if true > max_d + 1e-9:
            assert line_i == -1
            continue
        if true < max_d - 1e-9:
            assert line_i >= 0
        if line_i < 0:
            continue
        assert dist == pytest.approx(true, abs=1e-7)
        assert math.hypot(px - x, py - y) == pytest.approx(dist, abs=1e-7)
        # The point found lies on the line it names.
        on = lines[int(line_i)]
        assert min(_to_segment(px, py, a, b) for a, b in itertools.pairwise(on)) < 1e-7


def _to_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance from (x, y) to segment ab (shapely's; a point's when a == b)."""
    if a == b:
        return math.hypot(x - a[0], y - a[1])
    return float(shapely.distance(shapely.linestrings([a, b]), shapely.points(x, y)))


def test_a_distance_that_is_not_positive_is_refused(helsinki: Network) -> None:
    for bad in (0.0, -5.0, math.nan):
        with pytest.raises(InputError, match="snapping distance"):
            Snapper(helsinki, bad)
