"""OSRM-style scenario helpers: an ASCII street map → a real OSM file → a built network.

A map is drawn on a grid where one character cell is ``grid_m`` metres wide and one line
is ``grid_m`` metres tall (``grid_m`` plays the part of OSRM's ``grid_size``). Letters are
OSM nodes; digits are extra points that are *not* nodes (use them to start or end a route
in the middle of a street); every other character is decoration::

    a   1   b         with grid_m = 100: b 800 m east of a, point 1 halfway between
            |         them, c 200 m south of b (the "|" is ignored)
            c

Column 0 / row 0 lies at 47.0° N, 9.5° E and the map grows east and south. Each row's
latitude is the geodesic distance down the meridian; longitudes use the length of a
degree of longitude on the row's own parallel (WGS84, ``pyproj.Geod``). Coordinates are
then rounded to OSM's 1e-7° (about 1 cm), the only error in the grid distances.

>>> sorted(_parse_map("a b\\n  1").items())
[('1', (2, 1)), ('a', (0, 0)), ('b', (2, 0))]
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import osmium
from pyproj import Geod

from airpath.network.build import build_network
from airpath.network.osm import read_osm
from airpath.network.profile import load_profile
from airpath.network.store import Network, load_network
from airpath.routing.result import Route
from airpath.routing.router import Router

ORIGIN_LAT = 47.0
ORIGIN_LON = 9.5
_GEOD = Geod(ellps="WGS84")

LatLon = tuple[float, float]


def grid_network(
    ascii_map: str,
    ways: Sequence[Mapping[str, str]],
    tmp_path: Path,
    grid_m: float = 100.0,
) -> tuple[Network, dict[str, LatLon]]:
    """Write ``ascii_map`` + ``ways`` as ``tmp_path/map.osm``, build and load the network.

    Each way is ``{"nodes": "abc", "highway": "residential", ...}``: every key except
    ``nodes`` becomes a tag, and ``name`` defaults to the node string. Returns the loaded
    network and the ``(lat, lon)`` of every letter and digit of the map, rounded the way
    OSM stores coordinates (1e-7°), so a letter's point is bit-identical to its node in
    the network.
    """
    cells = _parse_map(ascii_map)
    points = {label: _latlon(col * grid_m, row * grid_m) for label, (col, row) in cells.items()}
    letters = [label for label in cells if label.isalpha()]
    node_id = {label: i + 1 for i, label in enumerate(letters)}

    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests">']
    for label in letters:
        lat, lon = points[label]
        lines.append(f'  <node id="{node_id[label]}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for i, way in enumerate(ways, start=1):
        refs = way["nodes"]
        unknown = [c for c in refs if c not in node_id]
        if unknown or len(refs) < 2:
            raise ValueError(f"way {refs!r}: needs two or more map letters, unknown {unknown}")
        tags = {"name": refs, **{k: v for k, v in way.items() if k != "nodes"}}
        lines.append(f'  <way id="{i}" version="1">')
        lines.extend(f'    <nd ref="{node_id[c]}"/>' for c in refs)
        lines.extend(f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        lines.append("  </way>")
    lines.append("</osm>")
    osm_path = Path(tmp_path) / "map.osm"
    osm_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    profile = load_profile()
    out = Path(tmp_path) / "network"
    build_network(read_osm([osm_path], profile), out, profile, sources=[str(osm_path)])
    return load_network(out), points


def _parse_map(ascii_map: str) -> dict[str, tuple[int, int]]:
    """``label → (column, row)`` for every letter and digit; blank edge lines are dropped."""
    rows = textwrap.dedent(ascii_map).split("\n")
    while rows and not rows[0].strip():
        rows.pop(0)
    while rows and not rows[-1].strip():
        rows.pop()
    cells: dict[str, tuple[int, int]] = {}
    for r, text in enumerate(rows):
        for c, ch in enumerate(text):
            if not ch.isalnum():
                continue
            if ch in cells:
                raise ValueError(f"{ch!r} appears twice in the map")
            cells[ch] = (c, r)
    return cells


def _latlon(east_m: float, south_m: float) -> LatLon:
    _, lat, _ = _GEOD.fwd(ORIGIN_LON, ORIGIN_LAT, 180.0, south_m)
    _, _, m_per_centideg = _GEOD.inv(ORIGIN_LON, lat, ORIGIN_LON + 0.01, lat)
    lon = ORIGIN_LON + east_m / (m_per_centideg / 0.01)
    # osmium keeps coordinates as integers of 1e-7°: go through it to match its floats.
    loc = osmium.osm.Location(lon, lat)
    return loc.lat, loc.lon


def summarise(route: Route) -> tuple[str, str]:
    """``("ab,bc", "ride,walk")``: the ways travelled and how, one entry per run of legs
    on the same way in the same mode (OSRM's ``route`` and ``modes`` columns)."""
    groups: list[tuple[str, str]] = []
    for leg in route.legs:
        key = (leg.name, "walk" if leg.walk else "ride")
        if not groups or groups[-1] != key:
            groups.append(key)
    return ",".join(g[0] for g in groups), ",".join(g[1] for g in groups)


def route_names(router: Router, frm: LatLon, to: LatLon, profile: str = "shortest") -> list[str]:
    """Names of the ways travelled from ``frm`` to ``to`` (consecutive repeats merged)."""
    names: list[str] = []
    for leg in router.route(frm, to, profile).best.legs:
        if not names or names[-1] != leg.name:
            names.append(leg.name)
    return names


def path_letters(route: Route, points: Mapping[str, LatLon]) -> str:
    """The map labels the route passes through, in order (``"abdc"``).

    A route's coordinates are (lon, lat) rounded to 1e-7°, the grid of OSM coordinates,
    so a label matches when the route passes exactly over its point.
    """
    where = {(round(lon, 7), round(lat, 7)): label for label, (lat, lon) in points.items()}
    out: list[str] = []
    for lon, lat in route.coordinates:
        label = where.get((round(lon, 7), round(lat, 7)))
        if label is not None and (not out or out[-1] != label):
            out.append(label)
    return "".join(out)
