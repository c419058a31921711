"""Street segments of a network as map features: geometry, a spatial index, and the
directed edges whose field values each segment shows.

A map draws a street once, so ``/v1/field`` has one feature per segment, not per directed
edge. The two directions of a two-way street share the geometry; the segment shows the
larger of their two values (the conservative choice for a pollution map).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from airpath.network.store import Network

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BBox = tuple[float, float, float, float]  # lon0, lat0, lon1, lat1
_TILE_PX = 256  # web-map tiles are 256 px wide: 360° / (256 · 2^zoom) per pixel


def tolerance_deg(zoom: int, lat_deg: float) -> float:
    """Half a pixel at ``zoom``, in degrees, measured north-south at ``lat_deg`` (where a
    degree of longitude spans the most pixels): simplifying within it is invisible."""
    return 0.5 * 360.0 / (_TILE_PX * 2.0**zoom) * max(math.cos(math.radians(lat_deg)), 0.01)


class SegmentIndex:
    """Segments with at least one directed edge, ready for bbox queries."""

    def __init__(self, network: Network) -> None:
        off = np.asarray(network.geom_offsets, dtype=np.int64)
        pts = np.asarray(network.geom_lonlat, dtype=np.float64)
        n_seg = len(off) - 1
        seg = np.asarray(network.edge_segment, dtype=np.int64)
        rev = np.asarray(network.edge_reversed).astype(bool)
        edges = np.arange(len(seg), dtype=np.int64)
        self.edge_fwd = np.full(n_seg, -1, dtype=np.int64)
        self.edge_bwd = np.full(n_seg, -1, dtype=np.int64)
        self.edge_fwd[seg[~rev]] = edges[~rev]
        self.edge_bwd[seg[rev]] = edges[rev]
        self.lines = shapely.linestrings(pts, indices=np.repeat(np.arange(n_seg), np.diff(off)))
        one = np.maximum(self.edge_fwd, self.edge_bwd)
        self.has_edge = one >= 0
        self.length_m = np.where(
            self.has_edge, np.asarray(network.edge_length_m)[np.maximum(one, 0)], 0.0
        )
        self.names = network.names_array[np.asarray(network.segment_name)]
        self._tree = shapely.STRtree(self.lines)

    def query(self, bbox: BBox, limit: int) -> tuple[IntArray, int]:
        """Segments meeting ``bbox`` (at most ``limit``, the longest first when there are
        more: they carry the map) in index order, and how many met it in all."""
        found = self._tree.query(shapely.box(*bbox), predicate="intersects")
        found = np.sort(found[self.has_edge[found]]).astype(np.int64)
        total = len(found)
        if total > limit:
            keep = np.argsort(-self.length_m[found], kind="stable")[:limit]
            found = np.sort(found[keep])
        return found, total

    def values(self, per_edge: FloatArray, segments: IntArray) -> FloatArray:
        """``(horizons, len(segments))``: the larger value of each segment's directions."""
        f, b = self.edge_fwd[segments], self.edge_bwd[segments]
        vf = np.where(f >= 0, per_edge[:, np.maximum(f, 0)], -np.inf)
        vb = np.where(b >= 0, per_edge[:, np.maximum(b, 0)], -np.inf)
        return np.maximum(vf, vb)

    def coordinates(self, segments: IntArray, tolerance: float) -> list[list[list[float]]]:
        """[lon, lat] positions of each segment, simplified within ``tolerance`` degrees
        (Douglas-Peucker keeps both ends, so streets still meet at junctions)."""
        if len(segments) == 0:
            return []
        geoms = shapely.simplify(self.lines[segments], tolerance, preserve_topology=False)
        _, coords, (offsets,) = shapely.to_ragged_array(geoms)
        flat: list[Any] = np.round(coords, 6).tolist()
        bounds: Sequence[int] = offsets.tolist()
        return [flat[a:b] for a, b in itertools.pairwise(bounds)]
