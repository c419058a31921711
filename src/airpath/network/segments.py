"""The importers' common output: undirected street segments between junctions.

Every source (OpenStreetMap, the Barcelona municipal graph, a generated grid) is turned
into a :class:`SegmentTable` first; :func:`airpath.network.build.build_network` then makes
directed edges, attaches elevation and priors, keeps the largest strongly connected
component and writes the on-disk format. Keeping one intermediate means the rules that
follow (grade-aware speeds, component pruning, CSR layout) exist once.

Geometry is kept per segment as a flat coordinate array with offsets, WGS84
longitude/latitude in degrees, first and last point equal to the junction coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.errors import EmptyNetworkError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Int8Array = npt.NDArray[np.int8]
StrArray = npt.NDArray[np.object_]
GeomArray = npt.NDArray[np.object_]
"""An array of shapely geometries."""

POLLUTANTS: tuple[str, ...] = ("no2", "pm10", "pm25")
"""Pollutants with per-edge priors, in the order used by every per-edge field array."""

INFRA_CLASSES: tuple[str, ...] = ("cycleway", "track", "lane", "shared", "busy", "path")
"""Cycle infrastructure classes, best first: a separate cycleway, a track beside the road,
a painted lane, a quiet shared road, a busy road with nothing for bikes, and a path
(footway, track or similar that cycles may use). Stored as ``int8`` codes in this order."""

MODE_NONE, MODE_RIDE, MODE_WALK = 0, 1, 2
"""Travel modes of a segment direction: not allowed, ridden, or walked pushing the bike."""


@dataclass
class SegmentTable:
    """Undirected segments between junctions, with per-segment attributes.

    Arrays of length ``n_nodes``: ``node_lon``, ``node_lat``, ``node_source_id``.
    Arrays of length ``n_segments``: everything else. ``mode_fwd`` / ``mode_bwd`` say how a
    rider may travel u→v / v→u: one of :data:`MODE_NONE`, :data:`MODE_RIDE`,
    :data:`MODE_WALK` (pushing the bike). ``speed_kph`` is the flat-ground riding speed the
    profile gives; walking edges use the profile's walking speed instead.
    ``priors`` maps each pollutant of :data:`POLLUTANTS` to annual-mean µg/m³ per segment,
    NaN where the source has none (the builder fills those from the placeholder prior).
    ``green_areas`` (shapely polygons) and ``major_road_lines`` (shapely lines of major
    roads the profile does not ride, such as motorways), both WGS84 lon/lat, are the
    surroundings the OSM prior reads (:func:`airpath.network.priors.lur_prior`); empty
    for other sources. They are inputs to the build, not written to the network.
    """

    node_lon: FloatArray
    node_lat: FloatArray
    node_source_id: IntArray
    u: IntArray
    v: IntArray
    mode_fwd: Int8Array
    mode_bwd: Int8Array
    length_m: FloatArray
    speed_kph: FloatArray
    highway: StrArray
    infra: Int8Array
    surface: StrArray
    name: StrArray
    source_id: IntArray
    geom_offsets: IntArray
    geom_lonlat: FloatArray
    priors: dict[str, FloatArray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    green_areas: GeomArray = field(default_factory=lambda: np.empty(0, dtype=object))
    major_road_lines: GeomArray = field(default_factory=lambda: np.empty(0, dtype=object))

    @property
    def n_nodes(self) -> int:
        return int(self.node_lon.shape[0])

    @property
    def n_segments(self) -> int:
        return int(self.u.shape[0])

    def geometry(self, i: int) -> FloatArray:
        """Coordinates (lon, lat) of segment ``i``, shape (k, 2), from u to v."""
        return self.geom_lonlat[self.geom_offsets[i] : self.geom_offsets[i + 1]]

    def validate(self) -> None:
        """Check the invariants the builder relies on; raise :class:`EmptyNetworkError`
        when nothing routable is left."""
        n, m = self.n_nodes, self.n_segments
        if m == 0 or n == 0:
            raise EmptyNetworkError("no rideable street segments in the input")
        for name in ("node_lat", "node_source_id"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, want ({n},)")
        for name in (
            "v",
            "mode_fwd",
            "mode_bwd",
            "length_m",
            "speed_kph",
            "highway",
            "infra",
            "surface",
            "name",
            "source_id",
        ):
            if getattr(self, name).shape != (m,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, want ({m},)")
        if self.geom_offsets.shape != (m + 1,) or self.geom_offsets[-1] != len(self.geom_lonlat):
            raise ValueError("geom_offsets do not index geom_lonlat")
        if self.u.min() < 0 or self.v.min() < 0 or max(self.u.max(), self.v.max()) >= n:
            raise ValueError("segment endpoints out of node range")
        if not np.all(np.isfinite(self.length_m)) or np.any(self.length_m < 0):
            raise ValueError("segment lengths must be finite and non-negative")
        for p, arr in self.priors.items():
            if p not in POLLUTANTS or arr.shape != (m,):
                raise ValueError(f"prior {p!r} has unknown pollutant or wrong length")
