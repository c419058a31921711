"""Snapping a point to the nearest point on the nearest rideable street segment.

Segments are indexed in a local equirectangular projection (metres; error well under 1 %
across a city) with a grid of their straight pieces (:mod:`airpath.routing.snapgrid`),
searched in compiled code: the exact nearest piece, as an R-tree gives, at a few
microseconds for a route's two ends. A snapped point lies on a segment at a fraction of
its length; the router starts or ends the search at both ends of that segment with the
matching part of each edge's cost, so routes begin exactly where the rider stands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from airpath.errors import CoordinateError, InputError, OutsideCoverageError
from airpath.network.segments import MODE_RIDE, MODE_WALK
from airpath.network.store import Network
from airpath.routing.snapgrid import PieceGrid

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Snap:
    """A point on segment ``segment`` at ``fraction`` of its length from its first node.

    ``edge_fwd`` / ``edge_bwd`` are the segment's directed edges along / against its
    geometry (-1 where that direction is not allowed); ``distance_m`` is how far the
    requested point was from the street.
    """

    lon: float
    lat: float
    segment: int
    fraction: float
    edge_fwd: int
    edge_bwd: int
    distance_m: float


def check_coordinate(lat: float, lon: float) -> None:
    """Raise :class:`CoordinateError` unless (lat, lon) is a real WGS84 coordinate."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise CoordinateError(f"coordinate ({lat}, {lon}) is not a number")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise CoordinateError(f"coordinate ({lat}, {lon}) is out of range (lat ±90, lon ±180)")


class Snapper:
    """Nearest-rideable-segment lookup for one network."""

    def __init__(
        self, network: Network, max_distance_m: float = 500.0, *, walkable: bool = False
    ) -> None:
        """``walkable`` also admits segments a cyclist may only walk (footways, steps):
        right for placing sensor readings, wrong for route ends."""
        if not (math.isfinite(max_distance_m) and max_distance_m > 0):
            raise InputError(
                f"the snapping distance must be a positive number of metres, got {max_distance_m}"
            )
        self.max_distance_m = max_distance_m
        n_seg = int(network.manifest["counts"]["segments"])
        seg = np.asarray(network.edge_segment)
        rev = np.asarray(network.edge_reversed, dtype=bool)
        edges = np.arange(network.n_edges)
        self.seg_edges = np.full((n_seg, 2), -1, dtype=np.int64)
        self.seg_edges[seg[~rev], 0] = edges[~rev]
        self.seg_edges[seg[rev], 1] = edges[rev]
        rideable = np.zeros(n_seg, dtype=bool)
        mode = np.asarray(network.edge_mode)
        usable = (mode == MODE_RIDE) | ((mode == MODE_WALK) if walkable else False)
        rideable[seg[usable]] = True

        bbox = network.manifest["bbox"]
        self._lat0 = math.radians(0.5 * (bbox[1] + bbox[3]))
        self._cos0 = math.cos(self._lat0)
        off = np.asarray(network.geom_offsets, dtype=np.int64)
        self._segments = np.flatnonzero(rideable)
        if not len(self._segments):
            raise InputError("the network has no street to snap to")
        # The rideable segments' points, one line after another.
        lo, hi = off[self._segments], off[self._segments + 1]
        count = hi - lo
        rows = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        xy = self._project(np.asarray(network.geom_lonlat)[rows])
        self._grid = PieceGrid.build(xy, np.concatenate([[0], np.cumsum(count)]))

    def _project(self, lonlat: np.ndarray) -> np.ndarray:
        lon = np.radians(lonlat[:, 0])
        lat = np.radians(lonlat[:, 1])
        return np.column_stack([lon * self._cos0 * EARTH_RADIUS_M, lat * EARTH_RADIUS_M])

    def snap(self, lat: float, lon: float) -> Snap:
        """Snap (lat, lon); raise :class:`OutsideCoverageError` beyond ``max_distance_m``."""
        return self.snap_many([(lat, lon)])[0]

    def snap_many(self, points: Sequence[tuple[float, float]]) -> list[Snap]:
        """Snap several (lat, lon) points with one index query (a route's two ends)."""
        for lat, lon in points:
            check_coordinate(lat, lon)
        if not points:
            return []
        # What _project computes, on Python floats (the same operations, same results).
        xy = np.array(
            [
                (
                    math.radians(lon) * self._cos0 * EARTH_RADIUS_M,
                    math.radians(lat) * EARTH_RADIUS_M,
                )
                for lat, lon in points
            ],
            dtype=np.float64,
        )
        found = self._grid.locate(xy[:, 0], xy[:, 1], self.max_distance_m).tolist()
        x_scale = self._cos0 * EARTH_RADIUS_M
        snaps: list[Snap] = []
        for (lat, lon), (line, frac, x, y, dist) in zip(points, found, strict=True):
            if line < 0:
                raise OutsideCoverageError(
                    f"({lat:.6f}, {lon:.6f}) is more than {self.max_distance_m:g} m from any "
                    "rideable street of this network"
                )
            segment = int(self._segments[int(line)])
            fwd, bwd = self.seg_edges[segment].tolist()
            # Snap(...) made as Legs._record makes a Leg: a frozen dataclass's __init__ sets
            # each field through object.__setattr__, which took a fifth of the snapping
            # of a route's ends. Filled in field order, it is the same object.
            snap = object.__new__(Snap)
            state = snap.__dict__
            state["lon"] = math.degrees(x / x_scale)
            state["lat"] = math.degrees(y / EARTH_RADIUS_M)
            state["segment"] = segment
            state["fraction"] = frac
            state["edge_fwd"] = fwd
            state["edge_bwd"] = bwd
            state["distance_m"] = dist
            snaps.append(snap)
        return snaps
