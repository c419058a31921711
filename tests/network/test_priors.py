"""The OSM land-use-regression prior on hand-drawn streets, and on real extracts.

Streets are drawn in metres east/north of a point in Helsinki and turned into a
:class:`SegmentTable` with one segment per line.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely

from airpath.network.build import build_network
from airpath.network.osm import read_osm
from airpath.network.priors import (
    BACKGROUND_UGM3,
    GREEN_REDUCTION,
    LUR_PRIOR,
    lur_prior,
    placeholder_prior,
)
from airpath.network.profile import load_profile
from airpath.network.segments import INFRA_CLASSES, MODE_RIDE, POLLUTANTS, SegmentTable
from shared import shared_data

LON0, LAT0 = 24.94, 60.17
M_PER_DEG_LAT = 6_371_008.8 * math.pi / 180.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))

Line = list[tuple[float, float]]


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    return LON0 + x_m / M_PER_DEG_LON, LAT0 + y_m / M_PER_DEG_LAT


def square(x0_m: float, y0_m: float, x1_m: float, y1_m: float) -> shapely.Polygon:
    return shapely.Polygon(
        [lonlat(x0_m, y0_m), lonlat(x1_m, y0_m), lonlat(x1_m, y1_m), lonlat(x0_m, y1_m)]
    )


def streets(
    lines: list[Line],
    highway: list[str],
    *,
    green: tuple[shapely.Polygon, ...] = (),
    infra: str = "shared",
) -> SegmentTable:
    """One two-way segment per line (metres), each with its own two end nodes."""
    m = len(lines)
    coords = np.array([lonlat(x, y) for line in lines for x, y in line])
    offsets = np.concatenate([[0], np.cumsum([len(line) for line in lines])]).astype(np.int64)
    ends = np.concatenate([coords[offsets[:-1]], coords[offsets[1:] - 1]])
    return SegmentTable(
        node_lon=ends[:, 0].copy(),
        node_lat=ends[:, 1].copy(),
        node_source_id=np.arange(2 * m, dtype=np.int64),
        u=np.arange(m, dtype=np.int64),
        v=np.arange(m, 2 * m, dtype=np.int64),
        mode_fwd=np.full(m, MODE_RIDE, dtype=np.int8),
        mode_bwd=np.full(m, MODE_RIDE, dtype=np.int8),
        length_m=np.array([math.dist(line[0], line[-1]) for line in lines]),
        speed_kph=np.full(m, 18.0),
        highway=np.array(highway, dtype=object),
        infra=np.full(m, INFRA_CLASSES.index(infra), dtype=np.int8),
        surface=np.full(m, "asphalt", dtype=object),
        name=np.full(m, "", dtype=object),
        source_id=np.arange(m, dtype=np.int64),
        geom_offsets=offsets,
        geom_lonlat=coords,
        green_areas=np.array(green, dtype=object),
        meta={"source": "osm"},
    )


def test_a_street_beside_a_primary_road_gets_more_than_one_a_kilometre_away():
    #   y=1030  ----- far residential
    #
    #   y=30    ----- near residential
    #   y=0     ========================= primary
    table = streets(
        [[(0, 0), (1000, 0)], [(450, 30), (550, 30)], [(450, 1030), (550, 1030)]],
        ["primary", "residential", "residential"],
    )
    prior = lur_prior(table)
    flat = placeholder_prior(table.highway, table.infra)
    for p in POLLUTANTS:
        assert prior[p][1] > prior[p][2], p
        assert prior[p][2] == pytest.approx(flat[p][2])  # beyond the roads' reach
        assert prior[p][0] == pytest.approx(flat[p][0])  # no near-road term on itself
    # 30 m from the primary keeps most of the NO2 excess (e-folding distance 150 m).
    assert prior["no2"][1] - prior["no2"][2] == pytest.approx(15.0 * math.exp(-30 / 150), rel=0.02)


def test_the_near_road_excess_falls_with_distance():
    offsets_m = [20, 60, 120, 250, 500]
    lines = [[(0, 0), (2000, 0)], *[[(950, y), (1050, y)] for y in offsets_m]]
    prior = lur_prior(streets(lines, ["trunk"] + ["residential"] * len(offsets_m)))
    assert np.all(np.diff(prior["no2"][1:]) < 0)


def test_a_street_inside_a_park_gets_less_than_the_same_street_outside():
    park = square(-300, -300, 300, 300)
    table = streets(
        [[(-50, 0), (50, 0)], [(1950, 0), (2050, 0)]], ["residential"] * 2, green=(park,)
    )
    prior = lur_prior(table)
    flat = placeholder_prior(table.highway, table.infra)
    for p in POLLUTANTS:
        assert prior[p][0] < prior[p][1], p
        assert prior[p][1] == pytest.approx(flat[p][1])
        # Fully green surroundings: the local part falls by GREEN_REDUCTION.
        local = flat[p][0] - BACKGROUND_UGM3[p]
        assert prior[p][0] == pytest.approx(BACKGROUND_UGM3[p] + local * (1 - GREEN_REDUCTION))


def test_overlapping_green_areas_count_once():
    # A garden inside a park, both covering the west half of the street's disc.
    park = square(-500, -500, 0, 500)
    garden = square(-200, -200, 0, 200)
    line = [[(-50, 0), (50, 0)]]
    once = lur_prior(streets(line, ["tertiary"], green=(park,)))
    twice = lur_prior(streets(line, ["tertiary"], green=(park, garden)))
    none = lur_prior(streets(line, ["tertiary"]))
    assert once["no2"][0] == pytest.approx(twice["no2"][0])
    local = none["no2"][0] - BACKGROUND_UGM3["no2"]
    half_green = BACKGROUND_UGM3["no2"] + local * (1 - GREEN_REDUCTION * 0.5)
    assert once["no2"][0] == pytest.approx(half_green, rel=0.01)


def test_invalid_green_polygons_are_repaired_not_fatal():
    bowtie = shapely.Polygon(
        [lonlat(-200, -200), lonlat(200, 200), lonlat(200, -200), lonlat(-200, 200)]
    )
    prior = lur_prior(streets([[(-50, 0), (50, 0)]], ["residential"], green=(bowtie,)))
    assert np.isfinite(prior["no2"]).all()


def test_without_surroundings_the_prior_is_the_placeholder():
    table = streets(
        [[(0, 0), (100, 0)], [(0, 50), (100, 50)], [(0, 500), (100, 500)]],
        ["tertiary", "cycleway", "living_street"],
        infra="cycleway",
    )
    prior = lur_prior(table)
    flat = placeholder_prior(table.highway, table.infra)
    for p in POLLUTANTS:
        np.testing.assert_allclose(prior[p], flat[p])


def test_a_separate_cycleway_beside_a_primary_road_sees_part_of_its_excess():
    table = streets(
        [[(0, 0), (1000, 0)], [(0, 8), (1000, 8)]], ["primary", "cycleway"], infra="cycleway"
    )
    table.infra[0] = INFRA_CLASSES.index("busy")
    prior = lur_prior(table)
    assert BACKGROUND_UGM3["no2"] < prior["no2"][1] < prior["no2"][0]


def test_the_manifest_names_the_prior(tmp_path):
    # A Barcelona-like table: the city map covers one section of two.
    table = streets([[(0, 0), (100, 0)], [(100, 0), (200, 0)]], ["primary", "residential"])
    table.u[1] = table.v[0]  # join the two sections so the network is connected
    table.meta = {"source": "barcelona"}
    table.priors = {p: np.array([30.0, np.nan]) for p in POLLUTANTS}
    build_network(table, tmp_path / "bcn", load_profile(None))
    manifest = json.loads((tmp_path / "bcn" / "manifest.json").read_text())
    assert manifest["prior"] == "barcelona-2022-map+placeholder"


def test_helsinki_uses_the_osm_prior(helsinki):
    assert helsinki.manifest["prior"] == LUR_PRIOR
    prior = np.asarray(helsinki.edge_prior_ugm3)
    assert np.isfinite(prior).all()
    assert (prior > 0).all()
    assert helsinki.manifest["source"]["green_areas"] > 0


def test_liechtenstein_green_areas_are_found():
    path = shared_data("osm", "liechtenstein-latest.osm.pbf")
    table = read_osm([path], load_profile(None))
    assert len(table.green_areas) > 100
    assert table.meta["green_areas"] == len(table.green_areas)
    assert shapely.is_valid(table.green_areas).mean() > 0.9
    lon0, lat0, lon1, lat1 = shapely.total_bounds(table.green_areas)
    assert 9.4 < lon0 < lon1 < 9.7
    assert 47.0 < lat0 < lat1 < 47.3
    prior = lur_prior(table)
    for p in POLLUTANTS:
        assert np.isfinite(prior[p]).all()
        assert (prior[p] >= BACKGROUND_UGM3[p] * 0.8).all()
