"""Read OpenStreetMap files (PBF, XML, XML.gz, XML.bz2) into a :class:`SegmentTable`.

One pass with pyosmium collects the ways the bicycle profile accepts, with node
locations; ways are then split at junctions (nodes shared by two or more kept ways, and
way ends), so that a segment runs from junction to junction and keeps its full geometry.
Lengths are geodesic on the WGS84 ellipsoid (pyproj ``Geod.inv``).

The same pass keeps what the OSM prior (:func:`airpath.network.priors.lur_prior`) reads
around the streets: green space (closed ways and multipolygon relations with a tag of
``GREEN_TAGS``, assembled by pyosmium's area handler, whose relation pre-pass is cheap)
and the lines of major roads the profile does not ride (motorways, often trunk roads).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import osmium
import shapely
from pyproj import Geod

from airpath.errors import EmptyNetworkError, SourceError
from airpath.network.priors import MAJOR_HIGHWAYS
from airpath.network.profile import BicycleProfile, WayRule
from airpath.network.segments import FloatArray, SegmentTable

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2", ".osm.xml")
_GEOD = Geod(ellps="WGS84")

GREEN_TAGS: tuple[tuple[str, str], ...] = (
    *(("leisure", v) for v in ("park", "garden", "nature_reserve")),
    *(
        ("landuse", v)
        for v in ("forest", "grass", "meadow", "recreation_ground", "village_green", "cemetery")
    ),
    *(("natural", v) for v in ("wood", "scrub", "grassland", "heath")),
)
"""Tags (key, value) of the areas counted as green space."""


def is_osm_file(path: Path) -> bool:
    """Whether ``path`` has the name of an OpenStreetMap file we can read."""
    name = path.name.lower()
    return any(name.endswith(s) for s in OSM_SUFFIXES)


class _Way:
    __slots__ = ("lats", "lons", "name", "osm_id", "refs", "rule", "tags_highway")

    def __init__(
        self,
        osm_id: int,
        refs: list[int],
        lons: list[float],
        lats: list[float],
        rule: WayRule,
        highway: str,
        name: str,
    ) -> None:
        self.osm_id, self.refs, self.lons, self.lats = osm_id, refs, lons, lats
        self.rule, self.tags_highway, self.name = rule, highway, name


class _FileContents:
    __slots__ = ("green_wkb", "major_lines", "ways")

    def __init__(self) -> None:
        self.ways: list[_Way] = []
        self.green_wkb: dict[int, str] = {}  # hex WKB by area id
        self.major_lines: dict[int, FloatArray] = {}  # by way id, (k, 2) lon/lat


def read_osm(paths: Sequence[str | Path], profile: BicycleProfile) -> SegmentTable:
    """Read one or more OSM files (ways seen twice, as in overlapping extracts, are kept once)."""
    ways: dict[int, _Way] = {}
    green: dict[int, str] = {}
    majors: dict[int, FloatArray] = {}
    for path in paths:
        got = _read_file(Path(path), profile)
        for way in got.ways:
            ways.setdefault(way.osm_id, way)
        green.update(got.green_wkb)
        majors.update(got.major_lines)
    if not ways:
        raise EmptyNetworkError(f"no way in {', '.join(map(str, paths))} is usable by bicycle")
    table = _split_at_junctions(list(ways.values()))
    table.green_areas = shapely.from_wkb(list(green.values()), on_invalid="ignore")
    table.green_areas = table.green_areas[~shapely.is_missing(table.green_areas)]
    if majors:
        xy = list(majors.values())
        table.major_road_lines = shapely.linestrings(
            np.concatenate(xy), indices=np.repeat(np.arange(len(xy)), [len(a) for a in xy])
        )
    table.meta.update(
        {
            "source": "osm",
            "files": [Path(p).name for p in paths],
            "ways": len(ways),
            "green_areas": len(table.green_areas),
            "major_roads_not_ridden": len(majors),
        }
    )
    return table


def _read_file(path: Path, profile: BicycleProfile) -> _FileContents:
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    if not is_osm_file(path):
        raise SourceError(f"{path}: not an OpenStreetMap file (expected one of {OSM_SUFFIXES})")
    green = set(GREEN_TAGS)
    wkb = osmium.geom.WKBFactory()
    try:
        fp = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_areas(osmium.filter.TagFilter(*GREEN_TAGS))
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY | osmium.osm.AREA))
            .with_filter(osmium.filter.KeyFilter("highway", *sorted({k for k, _ in GREEN_TAGS})))
        )
        out = _FileContents()
        missing = 0
        for obj in fp:
            if isinstance(obj, osmium.osm.Area):
                if any((t.k, t.v) in green for t in obj.tags):
                    try:
                        out.green_wkb[obj.id] = wkb.create_multipolygon(obj)
                    except RuntimeError:  # an area with no complete ring: not green space
                        continue
                continue
            w = typing.cast("osmium.osm.Way", obj)  # the entity filter lets only ways through
            tags = {t.k: t.v for t in w.tags}
            if "highway" not in tags:
                continue
            rule = profile.classify(tags)
            if rule is None and tags["highway"] in MAJOR_HIGHWAYS:
                xy = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
                if len(xy) >= 2:
                    out.major_lines[w.id] = np.asarray(xy, dtype=np.float64)
                continue
            if rule is None or len(w.nodes) < 2:
                continue
            refs, lons, lats = [], [], []
            for n in w.nodes:
                if not n.location.valid():
                    missing += 1
                    continue
                refs.append(n.ref)
                lons.append(n.location.lon)
                lats.append(n.location.lat)
            if len(refs) >= 2:
                out.ways.append(
                    _Way(w.id, refs, lons, lats, rule, tags["highway"], tags.get("name", ""))
                )
    except RuntimeError as exc:  # libosmium reports corrupt or unreadable input this way
        raise SourceError(f"{path}: cannot read OpenStreetMap data: {exc}") from exc
    return out


def _split_at_junctions(ways: list[_Way]) -> SegmentTable:
    all_refs = np.concatenate([np.asarray(w.refs, dtype=np.int64) for w in ways])
    uniq, counts = np.unique(all_refs, return_counts=True)
    junction = set(uniq[counts > 1].tolist())
    for w in ways:  # way ends are junctions too
        junction.add(w.refs[0])
        junction.add(w.refs[-1])
        if w.refs[0] == w.refs[-1] and len(w.refs) > 3:
            # A closed way (loop street, roundabout) joined at one node only would
            # otherwise be a self-loop: split it half way round.
            junction.add(w.refs[len(w.refs) // 2])

    node_index: dict[int, int] = {}
    node_lon: list[float] = []
    node_lat: list[float] = []
    seg: dict[str, list[object]] = {
        k: []
        for k in ("u", "v", "fwd", "bwd", "speed", "highway", "infra", "surface", "name", "osm")
    }
    geom_lon: list[float] = []
    geom_lat: list[float] = []
    offsets = [0]
    self_loops = 0

    def node(ref: int, lon: float, lat: float) -> int:
        i = node_index.get(ref)
        if i is None:
            i = node_index[ref] = len(node_lon)
            node_lon.append(lon)
            node_lat.append(lat)
        return i

    for w in ways:
        start = 0
        for k in range(1, len(w.refs)):
            if w.refs[k] not in junction:
                continue
            if w.refs[k] == w.refs[start]:  # a closed loop with no junction on it
                self_loops += 1
                start = k
                continue
            u = node(w.refs[start], w.lons[start], w.lats[start])
            v = node(w.refs[k], w.lons[k], w.lats[k])
            for key, val in (
                ("u", u),
                ("v", v),
                ("fwd", w.rule.mode_fwd),
                ("bwd", w.rule.mode_bwd),
                ("speed", w.rule.speed_kph),
                ("highway", w.tags_highway),
                ("infra", w.rule.infra),
                ("surface", w.rule.surface),
                ("name", w.name),
                ("osm", w.osm_id),
            ):
                seg[key].append(val)
            geom_lon.extend(w.lons[start : k + 1])
            geom_lat.extend(w.lats[start : k + 1])
            offsets.append(len(geom_lon))
            start = k

    lon = np.asarray(geom_lon, dtype=np.float64)
    lat = np.asarray(geom_lat, dtype=np.float64)
    off = np.asarray(offsets, dtype=np.int64)
    table = SegmentTable(
        node_lon=np.asarray(node_lon, dtype=np.float64),
        node_lat=np.asarray(node_lat, dtype=np.float64),
        node_source_id=np.fromiter(node_index.keys(), dtype=np.int64, count=len(node_index)),
        u=np.asarray(seg["u"], dtype=np.int64),
        v=np.asarray(seg["v"], dtype=np.int64),
        mode_fwd=np.asarray(seg["fwd"], dtype=np.int8),
        mode_bwd=np.asarray(seg["bwd"], dtype=np.int8),
        length_m=polyline_lengths_m(lon, lat, off),
        speed_kph=np.asarray(seg["speed"], dtype=np.float64),
        highway=np.asarray(seg["highway"], dtype=object),
        infra=np.asarray(seg["infra"], dtype=np.int8),
        surface=np.asarray(seg["surface"], dtype=object),
        name=np.asarray(seg["name"], dtype=object),
        source_id=np.asarray(seg["osm"], dtype=np.int64),
        geom_offsets=off,
        geom_lonlat=np.column_stack([lon, lat]) if len(lon) else np.zeros((0, 2)),
    )
    table.meta["self_loops_dropped"] = self_loops
    return table


def polyline_lengths_m(lon: np.ndarray, lat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Geodesic length of each polyline in a flat coordinate array (metres)."""
    n = len(offsets) - 1
    if len(lon) < 2:
        return np.zeros(n)
    _, _, step = _GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    step = np.asarray(step, dtype=np.float64)
    step[offsets[1:-1] - 1] = 0.0  # the hop from one polyline's end to the next one's start
    cum = np.concatenate([[0.0], np.cumsum(step)])
    return cum[offsets[1:] - 1] - cum[offsets[:-1]]
