"""The Barcelona importer: label parsing, a tiny hand-made city, bad input, the real data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer

from airpath.errors import SourceError
from airpath.network.bcn import CSV_NAME, MAP_NAMES, class_midpoint_ugm3, read_barcelona
from airpath.network.segments import INFRA_CLASSES, MODE_RIDE, SegmentTable

BCN = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bcn"

X0, Y0 = 430_000.0, 4_581_000.0  # EPSG:25831 metres, in Barcelona
HEADER = "FID;COORD_X;COORD_Y;LONGITUD;ANGLE;C_Tram;C_Nus_I;C_Nus_F;TVia_D;NVia_D;TVia_E;NVia_E"


# --- class labels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "width", "want"),
    [
        ("20-30 µg/m³", 10.0, 25.0),
        ("10-20 µg/m³", 10.0, 15.0),
        ("5-10 µg/m³", 5.0, 7.5),
        ("<=10 µg/m³", 10.0, 5.0),
        (">70 µg/m³", 10.0, 75.0),
        (">40 µg/m³", 5.0, 42.5),
        (">25 µg/m³", 5.0, 27.5),
        (" 20 - 30 ug/m3 ", 10.0, 25.0),
        ("2,5-5", 10.0, 3.75),
        ("\u2264 10 \u03bcg/m\u00b3", 10.0, 5.0),
        (">= 70", 10.0, 75.0),
    ],
)
def test_class_midpoints(label: str, width: float, want: float) -> None:
    assert class_midpoint_ugm3(label, width) == pytest.approx(want)


@pytest.mark.parametrize("label", ["", "NA", "abc", "30-20 µg/m³", "20-30 mg/l", ">", "20-"])
def test_bad_class_labels_raise(label: str) -> None:
    with pytest.raises(SourceError, match="air-quality class"):
        class_midpoint_ugm3(label)


# --- a tiny hand-made city ----------------------------------------------------------------
#
#   N1 ---T1--- N2          T1 bends through (50, 0); T2 is two parts joined at (100, 50)
#    \          |           T3, T6 are not in the maps: straight lines, N5 rebuilt from
#     T5        T2          the CSV midpoint/length/angle; T4's map line ends 300 m from
#       \       |           N1, so it is drawn straight; T7 is a self-loop at N2.
#         ---- N3 ---T3--- N4 ---T6--- N5
#   (T4 runs N4 → N1)

SECTIONS = [
    # tram, i, f, x, y (CSV midpoint offsets), length, angle, tvia_d, nvia_d, tvia_e, nvia_e
    ("T00001A", "N00001A", "N00002B", 50, 0, 100.0, 0.0, "Carrer", "Carrer Tu", "", ""),
    (
        "T00002B",
        "N00002B",
        "N00003C",
        100,
        50,
        100.0,
        90.0,
        "Pla\u00c3\u00a7a",
        "Pla\u00c3\u00a7a U",
        "",
        "",
    ),
    ("T00003C", "N00003C", "N00004D", 150, 100, 100.0, 0.0, "", "", "Carrer", "Carrer Esquerra"),
    ("T00004D", "N00004D", "N00001A", 100, 50, 223.6, 153.4, "-", "La Rambla", "", ""),
    ("T00005E", "N00001A", "N00003C", 50, 50, 141.4, 45.0, "Avinguda", "Avinguda V", "", ""),
    ("T00006F", "N00004D", "N00005E", 250, 100, 100.0, 180.0, "Carrer", "Carrer Sis", "", ""),
    ("T00007G", "N00002B", "N00002B", 100, 10, 30.0, 0.0, "Carrer", "Carrer Bucle", "", ""),
]
JUNCTIONS = {1: (0, 0), 2: (100, 0), 3: (100, 100), 4: (200, 100), 5: (300, 100)}
LINES = {
    "T00001A": [[(0, 0), (50, 0), (100, 0)]],
    "T00002B": [[(100, 0), (100, 50)], [(100, 50), (100, 100)]],
    "T00004D": [[(200, 100), (0, 300)]],
    "T00005E": [[(0, 0), (100, 100)]],
    "RD00001": [[(0, -50), (100, -50)]],  # a ring-road section the CSV lacks
}
LABELS = {
    "no2": ["20-30 µg/m³", ">70 µg/m³", "10-20 µg/m³", "30-40 µg/m³", "50-60 µg/m³"],
    "pm10": ["35-40 µg/m³", ">40 µg/m³", "20-25 µg/m³", "25-30 µg/m³", "25-30 µg/m³"],
    "pm25": ["<=10 µg/m³", "10-15 µg/m³", "15-20 µg/m³", ">25 µg/m³", "10-15 µg/m³"],
}


def write_csv(folder: Path, lines: Sequence[str]) -> Path:
    path = folder / CSV_NAME
    path.write_bytes("\r\n".join(lines).encode("latin-1") + b"\r\n")
    return path


def write_map(path: Path, labels: Sequence[str]) -> None:
    geoms = [
        shapely.MultiLineString([[(X0 + x, Y0 + y) for x, y in part] for part in parts])
        for parts in LINES.values()
    ]
    pyogrio.raw.write(
        path,
        geometry=shapely.to_wkb(np.array(geoms, dtype=object)),
        field_data=[np.array(list(LINES), dtype=object), np.array(labels, dtype=object)],
        fields=["TRAM", "Rang"],
        driver="GPKG",
        geometry_type="MultiLineString",
        crs="EPSG:25831",
    )


@pytest.fixture
def tiny_city(tmp_path: Path) -> Path:
    rows = [HEADER]
    for k, (tram, i, f, x, y, length, angle, td, nd, te, ne) in enumerate(SECTIONS):
        rows.append(f"{k};{X0 + x};{Y0 + y};{length};{angle};{tram};{i};{f};{td};{nd};{te};{ne}")
    write_csv(tmp_path, rows)
    for pollutant, labels in LABELS.items():
        write_map(tmp_path / MAP_NAMES[pollutant], labels)
    return tmp_path


def utm(table: SegmentTable) -> tuple[np.ndarray, np.ndarray]:
    to_utm = Transformer.from_crs(4326, 25831, always_xy=True)
    x, y = to_utm.transform(table.geom_lonlat[:, 0], table.geom_lonlat[:, 1])
    return np.asarray(x) - X0, np.asarray(y) - Y0


def test_tiny_city(tiny_city: Path) -> None:
    table = read_barcelona(tiny_city)
    table.validate()
    assert table.n_segments == 6
    assert table.n_nodes == 5
    assert table.source_id.tolist() == [1, 2, 3, 4, 5, 6]
    assert table.node_source_id.tolist() == [1, 2, 3, 4, 5]
    x, y = utm(table)
    off = table.geom_offsets
    for node, (jx, jy) in JUNCTIONS.items():
        at = np.concatenate([off[:-1][table.u == node - 1], off[1:][table.v == node - 1] - 1])
        np.testing.assert_allclose(x[at], jx, atol=1e-3)
        np.testing.assert_allclose(y[at], jy, atol=1e-3)
    # T1 keeps its bend, T2's two parts become one line, the rest are straight.
    assert np.diff(off).tolist() == [3, 3, 2, 2, 2, 2]
    np.testing.assert_allclose(table.length_m, [100, 100, 100, 223.6, 141.4, 100], rtol=2e-3)
    assert table.meta["self_loops_dropped"] == 1
    assert table.meta["junctions_rebuilt_from_csv"] == 1
    assert table.meta["geometry"] == {
        "map_line": 3,
        "straight_no_map_line": 2,
        "straight_map_line_off_junctions": 1,
    }
    nan = float("nan")
    np.testing.assert_array_equal(table.priors["no2"], [25, 75, nan, 15, 35, nan])
    np.testing.assert_array_equal(table.priors["pm10"], [37.5, 42.5, nan, 22.5, 27.5, nan])
    np.testing.assert_array_equal(table.priors["pm25"], [5, 12.5, nan, 17.5, 27.5, nan])
    assert table.meta["priors_coverage"]["no2"] == pytest.approx(4 / 6)
    assert table.name.tolist()[:3] == ["Carrer Tu", "Plaça U", "Carrer Esquerra"]
    assert table.highway.tolist() == ["carrer", "plaça", "carrer", "street", "avinguda", "carrer"]
    assert (table.mode_fwd == MODE_RIDE).all()
    assert (table.mode_bwd == MODE_RIDE).all()
    assert (table.infra == INFRA_CLASSES.index("shared")).all()


# --- bad input ----------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no such folder.*nowhere"):
        read_barcelona(tmp_path / "nowhere")


def test_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=re.escape(CSV_NAME)):
        read_barcelona(tmp_path)


def test_csv_without_needed_columns(tmp_path: Path) -> None:
    write_csv(tmp_path, ["FID;C_Tram;NVia_D", "0;T00001A;Carrer Tu"])
    with pytest.raises(
        SourceError, match=re.escape(f"{CSV_NAME}: missing columns C_Nus_I, C_Nus_F")
    ):
        read_barcelona(tmp_path)


def test_csv_with_bad_ids_or_numbers(tmp_path: Path) -> None:
    write_csv(tmp_path, [HEADER, "0;1;2;3;4;tram-1;N00001A;N00002B;;;;"])
    with pytest.raises(SourceError, match="ids not like T00001B"):
        read_barcelona(tmp_path)
    write_csv(tmp_path, [HEADER, "0;x;2;3;4;T00001A;N00001A;N00002B;;;;"])
    with pytest.raises(SourceError, match="non-numeric"):
        read_barcelona(tmp_path)


def test_missing_or_unreadable_map(tiny_city: Path) -> None:
    (tiny_city / MAP_NAMES["pm10"]).unlink()
    with pytest.raises(SourceError, match=re.escape(MAP_NAMES["pm10"])):
        read_barcelona(tiny_city)
    (tiny_city / MAP_NAMES["pm10"]).write_bytes(b"not a geopackage")
    with pytest.raises(SourceError, match=re.escape(f"{MAP_NAMES['pm10']}: cannot read")):
        read_barcelona(tiny_city)


def test_map_with_an_unknown_class(tiny_city: Path) -> None:
    write_map(tiny_city / MAP_NAMES["no2"], ["20-30 µg/m³", "lots", "", "", ""])
    with pytest.raises(SourceError, match=re.escape(MAP_NAMES["no2"]) + ": unrecognised.*'lots'"):
        read_barcelona(tiny_city)


# --- the real data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def barcelona() -> SegmentTable:
    if not (BCN / CSV_NAME).is_file():
        pytest.skip(f"Barcelona open data not found in {BCN} (../shared/data is absent)")
    return read_barcelona(BCN)


def test_real_counts_and_validity(barcelona: SegmentTable) -> None:
    barcelona.validate()
    assert 14_500 <= barcelona.n_segments <= 15_000
    assert 9_000 <= barcelona.n_nodes <= 10_000
    assert barcelona.meta["source"] == "barcelona"
    assert barcelona.meta["sections"] == barcelona.n_segments
    assert len(np.unique(barcelona.source_id)) == barcelona.n_segments
    assert len(np.unique(barcelona.node_source_id)) == barcelona.n_nodes


def test_real_coordinates_inside_barcelona(barcelona: SegmentTable) -> None:
    for lon, lat in (
        (barcelona.node_lon, barcelona.node_lat),
        (barcelona.geom_lonlat[:, 0], barcelona.geom_lonlat[:, 1]),
    ):
        assert ((lon > 2.05) & (lon < 2.23)).all()
        assert ((lat > 41.31) & (lat < 41.47)).all()


def test_real_junctions_are_geometry_end_points(barcelona: SegmentTable) -> None:
    off, xy = barcelona.geom_offsets, barcelona.geom_lonlat
    np.testing.assert_array_equal(xy[off[:-1], 0], barcelona.node_lon[barcelona.u])
    np.testing.assert_array_equal(xy[off[:-1], 1], barcelona.node_lat[barcelona.u])
    np.testing.assert_array_equal(xy[off[1:] - 1, 0], barcelona.node_lon[barcelona.v])
    np.testing.assert_array_equal(xy[off[1:] - 1, 1], barcelona.node_lat[barcelona.v])


def test_real_lengths_agree_with_the_csv(barcelona: SegmentTable) -> None:
    assert (barcelona.length_m > 0).all()
    # Geodesic vs planar UTM length: the scale factor at 2.2 E is 0.99966.
    assert barcelona.meta["length_vs_longitud_median_rel"] < 1e-3


def test_real_priors(barcelona: SegmentTable) -> None:
    ranges = {"no2": (5.0, 75.0, 10.0), "pm10": (2.5, 45.0, 5.0), "pm25": (2.5, 30.0, 5.0)}
    for pollutant, (lo, hi, width) in ranges.items():
        prior = barcelona.priors[pollutant]
        have = prior[np.isfinite(prior)]
        assert len(have) / len(prior) > 0.98
        assert ((have >= lo) & (have <= hi)).all()
        # Midpoints of classes [k·w, (k+1)·w].
        np.testing.assert_allclose((have - width / 2) % width, 0.0, atol=1e-9)
    assert np.nanmedian(barcelona.priors["no2"]) == 25.0


def test_real_names_are_clean(barcelona: SegmentTable) -> None:
    names = set(barcelona.name.tolist())
    assert "Carrer Pepe Rubianes" in names
    assert not any("\u00c3" in n for n in names)
    assert "plaça" in set(barcelona.highway.tolist())
