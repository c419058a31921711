"""Annual-mean pollution priors per street segment, for networks without a city map.

Two priors live here. :func:`placeholder_prior` is the coarse one the Barcelona importer
uses for the sections its municipal map lacks:

    prior = background + kerb(highway) × infra

:func:`lur_prior` (``"lur-osm-v1"``) is the one every OpenStreetMap network gets. It is a
land-use-regression-style sum of terms, each from an OSM attribute, with fixed (not
fitted) coefficients:

    local = kerb(highway) × infra + [not major] × near × exp(−d / decay)
    prior = background + local × (1 − green_reduction × g)

- ``background`` (``BACKGROUND_UGM3``): typical annual means at European urban
  background stations (EEA, *Air quality in Europe 2022*, figures for NO2, PM10, PM2.5:
  about 20, 20 and 11 µg/m³).
- ``kerb(highway)`` (``ROAD_INCREMENT_UGM3``): what traffic on the road itself adds at
  the kerb, largest on trunk and primary roads (annual NO2 at European urban traffic
  stations runs roughly 1.5–2.5 × background; PM increments are smaller because much of
  PM is regional). An assumption scaled to those station ratios, not a fit.
- ``infra`` (``INFRA_FACTOR``): a cycleway or track separated from the carriageway sees
  part of the increment only, as on-bike studies comparing separated tracks with riding
  in traffic report. Assumed values.
- ``d``: metres from the segment's midpoint to the nearest major road (``MAJOR_HIGHWAYS``:
  motorway, trunk, primary, secondary and their links — rideable ones from the table,
  the others, such as motorways, from what the OSM reader kept in
  ``SegmentTable.major_road_lines``), measured to the road's centre line in a local
  equirectangular projection (scale error under 0.5 % within 25 km of the centre).
  Major roads themselves get no near-road term: their kerb increment already is the
  near-road peak, and the term would count it twice.
- ``near`` and ``decay`` (``NEAR_MAJOR_UGM3``, ``NEAR_DECAY_M``): the excess a street
  beside a major road takes from it, falling off exponentially. Karner, Eisinger &
  Niemeier (2010), *Near-roadway air quality: synthesizing the findings from real-world
  data*, Environ. Sci. Technol. 44:5334–5344, find almost all pollutants back to
  background by 115–570 m from the road edge, NO2 decaying steadily over that range and
  PM mass showing no clear trend with distance. Hence NO2 decays with an e-folding
  distance of 150 m (5 % left at 450 m) and a 15 µg/m³ near-road excess; PM gets a small
  excess (4 and 2 µg/m³) with a 100 m decay. The excess values are assumptions, set
  below the primary-road kerb increment so that a side street never exceeds the major
  road it meets.
- ``g``: the fraction of a ``GREEN_BUFFER_M`` = 100 m disc around the midpoint covered
  by green space (OSM parks, gardens, nature reserves, forest, grass, meadows,
  recreation grounds, village greens, cemeteries, woods, scrub, grassland, heath —
  ``SegmentTable.green_areas``), measured exactly on a 16-gon of the disc's area, with
  overlapping polygons (a garden inside a park) dissolved first so no ground counts
  twice.
- ``green_reduction`` (``GREEN_REDUCTION``) = 0.2: the local (non-background) part falls
  by up to 20 % in fully green surroundings. A documented assumption, deliberately
  modest — vegetation removes little pollution by deposition; most of the benefit of a
  park route is distance from traffic, which ``d`` already captures.

With no major roads and no green space within reach, :func:`lur_prior` equals
:func:`placeholder_prior`. These are priors, coarse by design; they make every network
routable by dose until measurements correct them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely

from airpath.network.segments import INFRA_CLASSES, POLLUTANTS, GeomArray, SegmentTable

FloatArray = npt.NDArray[np.float64]

LUR_PRIOR = "lur-osm-v1"
"""The name :func:`lur_prior` is recorded under in a network's manifest."""

BACKGROUND_UGM3: dict[str, float] = {"no2": 20.0, "pm10": 20.0, "pm25": 11.0}

# Kerbside increment over background by highway value, µg/m³ (no2, pm10, pm25).
ROAD_INCREMENT_UGM3: dict[str, tuple[float, float, float]] = {
    "trunk": (30.0, 8.0, 4.0),
    "trunk_link": (25.0, 7.0, 3.5),
    "primary": (25.0, 7.0, 3.5),
    "primary_link": (20.0, 6.0, 3.0),
    "secondary": (16.0, 5.0, 2.5),
    "secondary_link": (14.0, 4.0, 2.0),
    "tertiary": (10.0, 3.0, 1.5),
    "tertiary_link": (8.0, 2.5, 1.2),
    "unclassified": (5.0, 1.5, 0.8),
    "road": (5.0, 1.5, 0.8),
    "residential": (3.0, 1.0, 0.5),
    "service": (2.0, 0.8, 0.4),
    "living_street": (1.0, 0.5, 0.2),
}
"""Anything not listed (cycleways, paths, footways, tracks) adds nothing."""

INFRA_FACTOR: dict[str, float] = {
    "cycleway": 0.5,
    "track": 0.8,
    "lane": 1.0,
    "shared": 1.0,
    "busy": 1.0,
    "path": 0.5,
}


MAJOR_HIGHWAYS: frozenset[str] = frozenset(
    f"{kind}{link}"
    for kind in ("motorway", "trunk", "primary", "secondary")
    for link in ("", "_link")
)
"""Roads whose traffic raises concentrations in the streets around them."""

NEAR_MAJOR_UGM3: dict[str, float] = {"no2": 15.0, "pm10": 4.0, "pm25": 2.0}
"""Excess over background right beside a major road, for a street that is not one."""

NEAR_DECAY_M: dict[str, float] = {"no2": 150.0, "pm10": 100.0, "pm25": 100.0}
"""e-folding distance of the near-road excess (Karner et al. 2010, see the module)."""

GREEN_BUFFER_M = 100.0
GREEN_REDUCTION = 0.2

_NEAR_REACH = 5.0  # decay lengths: exp(-5) < 1 %, farther roads count as none
_GREEN_CELL_M = 1000.0  # big green polygons are cut into cells so a disc test stays cheap
_DISC_SIDES = 16
_POLYGON = 3  # shapely.get_type_id
_METRES_PER_DEGREE = 6_371_008.8 * math.pi / 180.0  # mean Earth radius (IUGG)


def placeholder_prior(
    highway: npt.NDArray[np.object_], infra: npt.NDArray[np.int8]
) -> dict[str, npt.NDArray[np.float64]]:
    """Prior annual mean (µg/m³) per segment for each pollutant of ``POLLUTANTS``.

    >>> p = placeholder_prior(np.array(["primary", "cycleway"], dtype=object),
    ...                       np.array([4, 0], dtype=np.int8))
    >>> p["no2"].tolist()
    [45.0, 20.0]
    """
    factor = np.array([INFRA_FACTOR[c] for c in INFRA_CLASSES])[infra.astype(np.int64)]
    kinds, inverse = np.unique(highway.astype(str), return_inverse=True)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for k, pollutant in enumerate(POLLUTANTS):
        inc = np.array([ROAD_INCREMENT_UGM3.get(h, (0.0, 0.0, 0.0))[k] for h in kinds])
        out[pollutant] = BACKGROUND_UGM3[pollutant] + inc[inverse] * factor
    return out


def lur_prior(table: SegmentTable) -> dict[str, FloatArray]:
    """Prior annual mean (µg/m³) per segment from OSM attributes (module docstring).

    Uses ``table.highway``, ``table.infra``, the segment geometry,
    ``table.major_road_lines`` and ``table.green_areas``; with neither a major road nor
    green space nearby it gives :func:`placeholder_prior`.
    """
    base = placeholder_prior(table.highway, table.infra)
    lon0 = float(np.mean(table.node_lon))
    lat0 = float(np.mean(table.node_lat))
    scale = np.array([_METRES_PER_DEGREE * math.cos(math.radians(lat0)), _METRES_PER_DEGREE])
    origin = np.array([lon0, lat0])

    def to_metres(xy: FloatArray) -> FloatArray:
        return (xy - origin) * scale

    off = table.geom_offsets
    lines = shapely.linestrings(
        to_metres(table.geom_lonlat), indices=np.repeat(np.arange(len(off) - 1), np.diff(off))
    )
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    is_major = np.isin(table.highway.astype(str), sorted(MAJOR_HIGHWAYS))
    majors = np.concatenate([lines[is_major], shapely.transform(table.major_road_lines, to_metres)])
    reach_m = _NEAR_REACH * max(NEAR_DECAY_M.values())
    d_major_m = _distance_to_nearest_m(mid, majors, reach_m)
    green = _green_fraction(mid, shapely.transform(table.green_areas, to_metres))

    out: dict[str, FloatArray] = {}
    for p in POLLUTANTS:
        near = NEAR_MAJOR_UGM3[p] * np.exp(-d_major_m / NEAR_DECAY_M[p])
        local = base[p] - BACKGROUND_UGM3[p] + np.where(is_major, 0.0, near)
        out[p] = BACKGROUND_UGM3[p] + local * (1.0 - GREEN_REDUCTION * green)
    return out


def _distance_to_nearest_m(points: GeomArray, lines: GeomArray, reach_m: float) -> FloatArray:
    """Distance from each point to the nearest line; inf beyond ``reach_m``."""
    out = np.full(len(points), np.inf)
    if len(lines) == 0 or len(points) == 0:
        return out
    tree = shapely.STRtree(lines)
    idx, dist = tree.query_nearest(
        points, max_distance=reach_m, return_distance=True, all_matches=False
    )
    out[idx[0]] = dist
    return out


def _green_fraction(points: GeomArray, areas: GeomArray) -> FloatArray:
    """Share of a ``GREEN_BUFFER_M`` disc around each point covered by ``areas``."""
    out = np.zeros(len(points))
    if len(areas) == 0 or len(points) == 0:
        return out
    pieces = _green_pieces(areas)
    if len(pieces) == 0:
        return out
    # A 16-gon of the disc's area, built from coordinates (faster than shapely.buffer).
    angle = np.linspace(0.0, 2.0 * np.pi, _DISC_SIDES + 1)
    radius_m = GREEN_BUFFER_M * np.sqrt(2 * np.pi / (_DISC_SIDES * np.sin(2 * np.pi / _DISC_SIDES)))
    ring = radius_m * np.column_stack([np.cos(angle), np.sin(angle)])
    ring[-1] = ring[0]
    discs = shapely.polygons(shapely.get_coordinates(points)[:, None, :] + ring[None, :, :])
    i, j = shapely.STRtree(pieces).query(discs, predicate="intersects")
    covered_m2 = shapely.area(shapely.intersection(discs[i], pieces[j]))
    out = np.bincount(i, weights=covered_m2, minlength=len(points)) / (np.pi * GREEN_BUFFER_M**2)
    return np.clip(out, 0.0, 1.0)  # rounding only: the pieces do not overlap


def _green_pieces(areas: GeomArray) -> GeomArray:
    """The green areas dissolved into disjoint polygons, the big ones cut into
    ``_GREEN_CELL_M`` cells so that each disc test touches few vertices."""
    parts = shapely.get_parts(areas)
    bad = ~shapely.is_valid(parts)
    if bad.any():
        parts = np.concatenate([parts[~bad], shapely.make_valid(parts[bad])])
    # Parks inside forests, gardens inside parks: dissolve the polygons that overlap
    # another one (only those: a union of all costs far more) so no ground counts twice.
    i, j = shapely.STRtree(parts).query(parts, predicate="intersects")
    pair = i < j
    i, j = i[pair], j[pair]
    overlap = ~shapely.touches(parts[i], parts[j])
    merge = np.zeros(len(parts), dtype=bool)
    merge[i[overlap]] = merge[j[overlap]] = True
    if merge.any():
        parts = np.concatenate([parts[~merge], shapely.get_parts(shapely.union_all(parts[merge]))])
    parts = parts[(shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)]
    if len(parts) == 0:
        return parts
    bounds = shapely.bounds(parts)
    big = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]) > _GREEN_CELL_M
    if not big.any():
        return parts
    lo = bounds[big, :2].min(axis=0)
    hi = bounds[big, 2:].max(axis=0)
    nx, ny = np.ceil((hi - lo) / _GREEN_CELL_M).astype(np.int64)
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
    x0 = lo[0] + gx.ravel() * _GREEN_CELL_M
    y0 = lo[1] + gy.ravel() * _GREEN_CELL_M
    cells = shapely.box(x0, y0, x0 + _GREEN_CELL_M, y0 + _GREEN_CELL_M)
    k, c = shapely.STRtree(cells).query(parts[big], predicate="intersects")
    cut = shapely.get_parts(shapely.intersection(parts[big][k], cells[c]))
    cut = cut[(shapely.get_type_id(cut) == _POLYGON) & (shapely.area(cut) > 0)]
    return np.concatenate([parts[~big], cut])
