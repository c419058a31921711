"""Terrain heights from SRTM tiles, and the climb and descent along street segments.

SRTM ``.hgt`` tiles (NASA Shuttle Radar Topography Mission, public domain) are square
grids of big-endian ``int16`` heights in metres above the EGM96 geoid, one file per
1 by 1 degree cell, named by the cell's south-west corner (``N42E001`` covers 42-43 N,
1-2 E). Row 0 is the northern edge and column 0 the western edge; neighbouring tiles
share their edge rows/columns. Two sizes exist: 3601 x 3601 posts (1 arc-second, ~30 m)
and 1201 x 1201 (3 arc-seconds, ~90 m). ``-32768`` marks a void (no radar return).
Source: SRTM Topography, USGS/NASA, ``SRTM_Topo.pdf`` §"Data formats".

>>> import numpy as np
>>> ramp = np.tile(np.arange(1201, dtype=np.int16), (1201, 1))  # +1 m per post eastwards
>>> model = ElevationModel({"N42E001": ramp})
>>> model.height_m(np.array([1.5]), np.array([42.5])).tolist()
[600.0]
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from airpath.errors import ElevationError
from airpath.network.segments import BoolArray, FloatArray, IntArray, SegmentTable

VOID = -32768
"""SRTM's marker for a post without data."""

TILE_SIZES: dict[int, int] = {2 * 3601 * 3601: 3601, 2 * 1201 * 1201: 1201}
"""Byte size of a ``.hgt`` file → posts per side (1 and 3 arc-second tiles)."""

SMOOTH_WINDOW_M = 150.0
"""Span of the centred moving mean applied to height profiles (see :func:`segment_climb`)."""

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG); sample spacing only needs ~0.5 % accuracy."""

_TILE_NAME = re.compile(r"^([NS])(\d{2})([EW])(\d{3})", re.IGNORECASE)


def tile_name(lat0: int, lon0: int) -> str:
    """Name of the SRTM tile whose south-west corner is (``lat0``, ``lon0``) degrees.

    >>> tile_name(42, 1), tile_name(-1, -71)
    ('N42E001', 'S01W071')
    """
    return f"{'N' if lat0 >= 0 else 'S'}{abs(lat0):02d}{'E' if lon0 >= 0 else 'W'}{abs(lon0):03d}"


def parse_tile_name(name: str) -> tuple[int, int] | None:
    """South-west corner (lat0, lon0) of a tile file name such as ``N42E001.hgt.zip``.

    >>> parse_tile_name("S01W071.SRTMGL1.hgt.zip"), parse_tile_name("andorra.hgt")
    ((-1, -71), None)
    """
    m = _TILE_NAME.match(Path(name).name)
    if m is None:
        return None
    lat0 = int(m[2]) * (1 if m[1].upper() == "N" else -1)
    lon0 = int(m[4]) * (1 if m[3].upper() == "E" else -1)
    if not (-90 <= lat0 < 90 and -180 <= lon0 < 180):
        return None
    return lat0, lon0


class ElevationModel:
    """SRTM tiles held in memory as float32 grids with voids as NaN.

    Build it from files with :meth:`from_files`, or from arrays keyed by tile name (any
    square grid of at least 2 x 2 posts, row 0 north) for tests and synthetic terrain.
    """

    def __init__(self, tiles: Mapping[str, npt.ArrayLike]) -> None:
        self._tiles: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        self._filled: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        for name, arr in tiles.items():
            corner = parse_tile_name(name)
            grid = np.asarray(arr)
            if corner is None:
                raise ElevationError(f"{name}: not an SRTM tile name like N42E001")
            if grid.ndim != 2 or grid.shape[0] != grid.shape[1] or grid.shape[0] < 2:
                raise ElevationError(f"{name}: tile must be a square grid, got {grid.shape}")
            heights = grid.astype(np.float32)
            if np.issubdtype(grid.dtype, np.integer):
                heights[grid == VOID] = np.nan
            self._tiles[corner] = heights

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> ElevationModel:
        """Read ``.hgt`` or ``.hgt.zip`` tiles; when a cell is given twice the finer wins."""
        tiles: dict[str, npt.NDArray[np.int16]] = {}
        for p in paths:
            name, grid = _read_tile(Path(p))
            if name not in tiles or grid.shape[0] > tiles[name].shape[0]:
                tiles[name] = grid
        return cls(tiles)

    @property
    def tile_names(self) -> list[str]:
        return sorted(tile_name(lat0, lon0) for lat0, lon0 in self._tiles)

    def covered(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether a tile covers each point (voids inside a tile count as covered)."""
        return self._locate(np.asarray(lon, np.float64), np.asarray(lat, np.float64)) >= 0

    def missing_tiles(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> dict[str, int]:
        """Tiles that would cover the uncovered points → how many points need each."""
        lon_a, lat_a = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
        out = ~self.covered(lon_a, lat_a) & np.isfinite(lon_a) & np.isfinite(lat_a)
        cells = np.column_stack([np.floor(lat_a[out]), np.floor(lon_a[out])]).astype(np.int64)
        uniq, counts = np.unique(cells, axis=0, return_counts=True)
        return {tile_name(int(a), int(b)): int(c) for (a, b), c in zip(uniq, counts, strict=True)}

    def height_m(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> FloatArray:
        """Bilinear height (metres) at each point; NaN where no tile covers the point.

        A void post is left out and the weights of the other three renormalised, so a
        lone void is filled from its neighbours; NaN only when all four posts are void.
        """
        return self._sample(np.asarray(lon, np.float64), np.asarray(lat, np.float64), False)

    def _sample(self, lon: FloatArray, lat: FloatArray, filled: bool) -> FloatArray:
        which = self._locate(lon, lat)
        out = np.full(lon.shape, np.nan)
        for k, (corner, raw) in enumerate(self._tiles.items()):
            sel = np.flatnonzero(which == k)
            if len(sel) == 0:
                continue
            grid = self._nearest_filled(corner, raw) if filled else raw
            n = grid.shape[0] - 1
            row = (corner[0] + 1 - lat[sel]) * n
            col = (lon[sel] - corner[1]) * n
            r0 = np.clip(np.floor(row).astype(np.int64), 0, n - 1)
            c0 = np.clip(np.floor(col).astype(np.int64), 0, n - 1)
            fr, fc = row - r0, col - c0
            acc = np.zeros(len(sel))
            wsum = np.zeros(len(sel))
            for dr, dc, w in (
                (0, 0, (1 - fr) * (1 - fc)),
                (0, 1, (1 - fr) * fc),
                (1, 0, fr * (1 - fc)),
                (1, 1, fr * fc),
            ):
                z = grid[r0 + dr, c0 + dc].astype(np.float64)
                ok = np.isfinite(z)
                acc += w * np.where(ok, z, 0.0)
                wsum += w * ok
            # wsum is 0 when every post with weight is void, e.g. exactly on a void post.
            with np.errstate(invalid="ignore", divide="ignore"):
                out[sel] = np.where(wsum > 1e-9, acc / wsum, np.nan)
        return out

    def _locate(self, lon: FloatArray, lat: FloatArray) -> IntArray:
        """Index into ``self._tiles`` of a tile covering each point, -1 if none.

        Tiles share edges, so a point on an integer degree is matched by either neighbour.
        """
        which = np.full(lon.shape, -1, dtype=np.int64)
        for k, (lat0, lon0) in enumerate(self._tiles):
            inside = (lat >= lat0) & (lat <= lat0 + 1) & (lon >= lon0) & (lon <= lon0 + 1)
            which[inside & (which < 0)] = k
        return which

    def _nearest_filled(
        self, corner: tuple[int, int], grid: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """The tile with every void replaced by its nearest valid post (computed once)."""
        if corner not in self._filled:
            void = np.isnan(grid)
            if void.all():
                raise ElevationError(f"tile {tile_name(*corner)} holds no valid heights")
            if void.any():
                idx = ndimage.distance_transform_edt(
                    void, return_distances=False, return_indices=True
                )
                grid = grid[idx[0], idx[1]]
            self._filled[corner] = grid
        return self._filled[corner]


def _read_tile(path: Path) -> tuple[str, npt.NDArray[np.int16]]:
    """Name and raw grid of one ``.hgt`` / ``.hgt.zip`` file."""
    if not path.is_file():
        raise ElevationError(f"no such elevation file: {path}")
    corner = parse_tile_name(path.name)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".hgt")]
                if len(members) != 1:
                    raise ElevationError(
                        f"{path}: expected one .hgt file inside the zip, found {len(members)}"
                    )
                if corner is None:
                    corner = parse_tile_name(members[0])
                data = zf.read(members[0])
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ElevationError(f"{path}: cannot read elevation tile: {exc}") from exc
    if corner is None:
        raise ElevationError(f"{path}: name does not start with an SRTM tile like N42E001")
    size = TILE_SIZES.get(len(data))
    if size is None:
        raise ElevationError(
            f"{path}: {len(data)} bytes is not an SRTM tile (want 3601² or 1201² int16)"
        )
    grid = np.frombuffer(data, dtype=">i2").reshape(size, size).astype(np.int16)
    return tile_name(*corner), grid


def segment_climb(
    table: SegmentTable,
    model: ElevationModel,
    sample_m: float = 20.0,
    *,
    smooth_window_m: float = SMOOTH_WINDOW_M,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Total ascent and descent (metres, u→v) per segment, and the height of every node.

    Each segment is resampled every ~``sample_m`` metres along its geometry (keeping its
    vertices), heights are sampled bilinearly and smoothed, and the rises and falls of the
    smoothed profile are summed. Going v→u the two numbers swap.

    Smoothing: each interior sample becomes the mean of the (piecewise-linear) profile
    over a window of ``smooth_window_m`` centred on it, the window shrinking
    symmetrically near the segment's ends so the ends keep the node heights. SRTM heights
    carry metre-level noise from post to post (Rodriguez et al. 2006, "A global
    assessment of the SRTM performance", PE&RS 72(3)); summing rises and falls over it
    inflates the climb of flat streets, and a window of about two 3-arc-second posts
    (five 1-arc-second posts) cancels most of it while keeping hills longer than the
    window. GraphHopper's ``EdgeElevationSmoothing`` likewise averages the points within
    150 m of each point.
    A centred mean leaves straight ramps unchanged, and pinned ends keep
    ``climb - descent`` equal to the height difference of the two nodes, so net grades
    stay exact and add up along a route.

    Voids: a node on a void takes the tile's nearest valid post; any other sample whose
    four posts are all void is interpolated linearly (by distance) between the nearest
    valid samples of the same segment. Raises :class:`ElevationError` naming the tiles
    to pass when some sample has no tile at all.
    """
    off = table.geom_offsets.astype(np.int64)
    lon, lat, seg = _resample(table.geom_lonlat, off, sample_m)
    m = table.n_segments
    _require_coverage(model, lon, lat)

    node_elev = model.height_m(table.node_lon, table.node_lat)
    gap = np.flatnonzero(np.isnan(node_elev))  # voids, or nodes outside every segment
    if len(gap):
        node_elev[gap] = model._sample(table.node_lon[gap], table.node_lat[gap], True)

    # Segment ends are the nodes, so pinning them makes every segment agree at a junction
    # and leaves only interior samples to fill.
    h = model.height_m(lon, lat)
    first = np.searchsorted(seg, np.arange(m), side="left")
    last = np.searchsorted(seg, np.arange(m), side="right") - 1
    has = last >= first
    h[first[has]] = node_elev[table.u[has]]
    h[last[has]] = node_elev[table.v[has]]

    same = seg[1:] == seg[:-1]
    step_m = _flat_distance_m(np.diff(lon), np.diff(lat), lat[1:]) if len(lon) else lon
    # One flat "track" coordinate for all samples; a 1 m gap between segments keeps it
    # increasing without mixing neighbours (every lookup stays inside its own segment).
    track_m = np.concatenate([[0.0], np.cumsum(np.where(same, step_m, 1.0))])
    seg_start_m = track_m[first[seg]]
    seg_end_m = track_m[last[seg]]
    if np.isnan(h).any():
        h = _fill_voids(h, track_m)
    smooth = _centred_mean(h, track_m, same, seg_start_m, seg_end_m, window_m=smooth_window_m)

    rise = np.diff(smooth)
    climb = np.bincount(seg[1:][same], weights=np.maximum(rise[same], 0.0), minlength=m)
    descent = np.bincount(seg[1:][same], weights=np.maximum(-rise[same], 0.0), minlength=m)
    return climb.astype(np.float64), descent.astype(np.float64), node_elev


def _require_coverage(model: ElevationModel, lon: FloatArray, lat: FloatArray) -> None:
    missing = model.missing_tiles(lon, lat)
    if not missing:
        return
    names = sorted(missing)
    parts = ", ".join(f"{n} (needed by {missing[n]} points)" for n in names)
    hint = " ".join(f"--elevation {n}.hgt" for n in names)
    raise ElevationError(f"no elevation tile covers {parts}; pass {hint} or .hgt.zip")


def _resample(
    lonlat: FloatArray, off: IntArray, sample_m: float
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Points every ~``sample_m`` along each polyline plus its vertices, in order.

    Returns flat lon, lat and the segment index of each point (non-decreasing).
    """
    if sample_m <= 0:
        raise ValueError(f"sample_m must be positive, got {sample_m}")
    m = len(off) - 1
    counts = np.diff(off)
    seg_of_vertex = np.repeat(np.arange(m), counts)
    lon, lat = lonlat[:, 0], lonlat[:, 1]
    is_last = np.zeros(len(lon), dtype=bool)
    is_last[off[1:][counts > 0] - 1] = True
    start = np.flatnonzero(~is_last)  # every vertex that begins an edge of its polyline
    dlon, dlat = lon[start + 1] - lon[start], lat[start + 1] - lat[start]
    edge_m = _flat_distance_m(dlon, dlat, lat[start] + 0.5 * dlat)
    pieces = np.maximum(1, np.ceil(edge_m / sample_m)).astype(np.int64)

    # Each edge contributes its start vertex and pieces-1 interior points; each polyline
    # then ends with its last vertex.
    edge_rep = np.repeat(np.arange(len(start)), pieces)
    edge_first = np.cumsum(pieces) - pieces
    t = (np.arange(len(edge_rep)) - edge_first[edge_rep]) / pieces[edge_rep]
    s_lon = lon[start][edge_rep] + t * dlon[edge_rep]
    s_lat = lat[start][edge_rep] + t * dlat[edge_rep]
    s_seg = seg_of_vertex[start][edge_rep]
    ends = np.flatnonzero(is_last)
    all_lon = np.concatenate([s_lon, lon[ends]])
    all_lat = np.concatenate([s_lat, lat[ends]])
    all_seg = np.concatenate([s_seg, seg_of_vertex[ends]])
    # Stable sort by segment keeps edge order, and puts the end vertex after the edges.
    order = np.argsort(all_seg, kind="stable")
    return all_lon[order], all_lat[order], all_seg[order]


def _flat_distance_m(dlon: FloatArray, dlat: FloatArray, lat_mid: FloatArray) -> FloatArray:
    """Equirectangular distance; within 0.1 % of geodesic for street-length steps."""
    x = np.radians(dlon) * np.cos(np.radians(lat_mid))
    dist: FloatArray = EARTH_RADIUS_M * np.hypot(x, np.radians(dlat))
    return dist


def _fill_voids(h: FloatArray, track_m: FloatArray) -> FloatArray:
    """Interpolate NaN heights linearly along the track between the valid samples around
    them. Segment ends are valid, so those neighbours are always in the same segment."""
    valid = np.isfinite(h)
    out = h.copy()
    out[~valid] = np.interp(track_m[~valid], track_m[valid], h[valid])
    return out


def _centred_mean(
    h: FloatArray,
    track_m: FloatArray,
    same: BoolArray,
    seg_start_m: FloatArray,
    seg_end_m: FloatArray,
    *,
    window_m: float,
) -> FloatArray:
    """Mean of the piecewise-linear profile over a centred window, shrunk at segment ends."""
    if len(h) < 2 or window_m <= 0:
        return h.copy()
    step = np.diff(track_m)
    area = np.where(same, 0.5 * (h[1:] + h[:-1]) * step, 0.0)
    integral = np.concatenate([[0.0], np.cumsum(area)])  # ∫h d(track) up to each sample

    def integral_at(q: FloatArray) -> FloatArray:
        k = np.clip(np.searchsorted(track_m, q, side="right") - 1, 0, len(h) - 2)
        t = q - track_m[k]
        frac = np.divide(t, step[k], out=np.zeros_like(t), where=step[k] > 0)
        hq = h[k] + (h[k + 1] - h[k]) * frac
        got: FloatArray = integral[k] + t * 0.5 * (h[k] + hq)
        return got

    half = np.minimum(0.5 * window_m, np.minimum(track_m - seg_start_m, seg_end_m - track_m))
    inner = half > 0
    out = h.copy()
    q0, q1 = track_m[inner] - half[inner], track_m[inner] + half[inner]
    out[inner] = (integral_at(q1) - integral_at(q0)) / (2 * half[inner])
    return out
