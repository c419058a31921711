"""Snapping a point to the nearest point on the nearest rideable street segment.

Segments are indexed in a local equirectangular projection (metres; error well under 1 %
across a city) with a shapely STRtree. A snapped point lies on a segment at a fraction of
its length; the router starts or ends the search at both ends of that segment with the
matching part of each edge's cost, so routes begin exactly where the rider stands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from airpath.errors import CoordinateError, OutsideCoverageError
from airpath.network.segments import MODE_RIDE, MODE_WALK
from airpath.network.store import Network

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
        off = np.asarray(network.geom_offsets)
        xy = self._project(np.asarray(network.geom_lonlat))
        lines = shapely.linestrings(xy, indices=np.repeat(np.arange(n_seg), np.diff(off)))
        self._segments = np.flatnonzero(rideable)
        self._lines = lines[self._segments]
        self._lengths = shapely.length(self._lines)
        self._tree = shapely.STRtree(self._lines)

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
        pts = shapely.points(xy)
        limit = self.max_distance_m
        if limit > 0:
            # shapely's max_distance only screens each point by a box query (which visits
            # every segment within the box) before the same nearest search, then drops
            # matches farther than it: filtering the unscreened answer is equivalent.
            (which, found), dist = self._tree.query_nearest(
                pts, return_distance=True, all_matches=False
            )
            near = dist <= limit
            if not near.all():
                which, found, dist = which[near], found[near], dist[near]
        else:  # not a positive distance: shapely decides (it rejects 0 and below)
            (which, found), dist = self._tree.query_nearest(
                pts, max_distance=limit, return_distance=True, all_matches=False
            )
        if len(which) < len(points):
            lat, lon = next(p for i, p in enumerate(points) if i not in set(which.tolist()))
            raise OutsideCoverageError(
                f"({lat:.6f}, {lon:.6f}) is more than {self.max_distance_m:g} m from any "
                "rideable street of this network"
            )
        # Every point has its one match now, in input order.
        lines = self._lines[found]
        along_m = shapely.line_locate_point(lines, pts)
        at = shapely.get_coordinates(shapely.line_interpolate_point(lines, along_m)).tolist()
        along, length = along_m.tolist(), self._lengths[found].tolist()
        segment = self._segments[found]
        edges = self.seg_edges[segment].tolist()
        x_scale = self._cos0 * EARTH_RADIUS_M
        snaps: list[Snap] = []
        for i, s in enumerate(segment.tolist()):
            frac = along[i] / length[i] if length[i] > 0 else 0.0
            snaps.append(
                Snap(
                    lon=math.degrees(at[i][0] / x_scale),
                    lat=math.degrees(at[i][1] / EARTH_RADIUS_M),
                    segment=s,
                    fraction=min(max(frac, 0.0), 1.0),
                    edge_fwd=edges[i][0],
                    edge_bwd=edges[i][1],
                    distance_m=float(dist[i]),
                )
            )
        return snaps
