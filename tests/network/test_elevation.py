"""SRTM tiles and segment climb: synthetic tiles with exact answers, plus one real tile."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from airpath.errors import ElevationError
from airpath.network.elevation import (
    ElevationModel,
    parse_tile_name,
    segment_climb,
    tile_name,
)
from airpath.network.segments import SegmentTable

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ANDORRA_TILE = DATA / "elevation" / "N42E001.hgt.zip"

N = 1201  # posts per side of a 3-arc-second tile


def plane(n: int = N) -> npt.NDArray[np.int16]:
    """Heights 100 + 2·col + 3·row metres: exact under bilinear interpolation."""
    row, col = np.mgrid[0:n, 0:n]
    return (100 + 2 * col + 3 * row).astype(np.int16)


def plane_height(lon: npt.ArrayLike, lat: npt.ArrayLike, lat0: int = 42, lon0: int = 1) -> object:
    col = (np.asarray(lon) - lon0) * (N - 1)
    row = (lat0 + 1 - np.asarray(lat)) * (N - 1)
    return 100 + 2 * col + 3 * row


def write_hgt(path: Path, grid: npt.NDArray[np.int16]) -> Path:
    path.write_bytes(grid.astype(">i2").tobytes())
    return path


def write_zip(path: Path, member: str, grid: npt.NDArray[np.int16]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, grid.astype(">i2").tobytes())
    return path


def table_from_lines(lines: Sequence[Sequence[tuple[float, float]]]) -> SegmentTable:
    """A table whose segments are the given polylines; equal end points share a node."""
    nodes: dict[tuple[float, float], int] = {}
    u, v, coords, off = [], [], [], [0]
    for line in lines:
        a, b = (nodes.setdefault(p, len(nodes)) for p in (line[0], line[-1]))
        u.append(a)
        v.append(b)
        coords.extend(line)
        off.append(len(coords))
    m = len(lines)
    node_xy = np.array(list(nodes), dtype=np.float64)
    zeros = np.zeros(m)
    text = np.full(m, "x", dtype=object)
    return SegmentTable(
        node_lon=node_xy[:, 0],
        node_lat=node_xy[:, 1],
        node_source_id=np.arange(len(nodes), dtype=np.int64),
        u=np.array(u, dtype=np.int64),
        v=np.array(v, dtype=np.int64),
        mode_fwd=np.ones(m, dtype=np.int8),
        mode_bwd=np.ones(m, dtype=np.int8),
        length_m=zeros,
        speed_kph=zeros + 16.0,
        highway=text,
        infra=np.zeros(m, dtype=np.int8),
        surface=text,
        name=text,
        source_id=np.arange(m, dtype=np.int64),
        geom_offsets=np.array(off, dtype=np.int64),
        geom_lonlat=np.array(coords, dtype=np.float64),
    )


def test_tile_names_round_trip() -> None:
    assert tile_name(42, 1) == "N42E001"
    assert tile_name(-34, -58) == "S34W058"
    assert parse_tile_name("N42E001.hgt.zip") == (42, 1)
    assert parse_tile_name("s34w058.hgt") == (-34, -58)
    assert parse_tile_name("N95E001.hgt") is None
    assert parse_tile_name("andorra.hgt") is None


def test_bilinear_is_exact_on_a_plane(tmp_path: Path) -> None:
    model = ElevationModel.from_files([write_hgt(tmp_path / "N42E001.hgt", plane())])
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(1, 2, 500), rng.uniform(42, 43, 500)
    np.testing.assert_allclose(model.height_m(lon, lat), plane_height(lon, lat), atol=1e-6)
    # Corners and edges of the tile are covered too.
    corner_lon, corner_lat = np.array([1.0, 2.0, 1.0, 2.0]), np.array([42.0, 42.0, 43.0, 43.0])
    np.testing.assert_allclose(
        model.height_m(corner_lon, corner_lat), plane_height(corner_lon, corner_lat), atol=1e-6
    )


def test_zipped_and_plain_tiles_agree(tmp_path: Path) -> None:
    grid = plane()
    plain = ElevationModel.from_files([write_hgt(tmp_path / "N42E001.hgt", grid)])
    zipped = ElevationModel.from_files(
        [write_zip(tmp_path / "N42E001.hgt.zip", "N42E001.hgt", grid)]
    )
    # A zip whose own name says nothing takes the tile name from its member.
    renamed = ElevationModel.from_files([write_zip(tmp_path / "dem.zip", "N42E001.hgt", grid)])
    lon, lat = np.array([1.25, 1.9]), np.array([42.1, 42.75])
    expected = plain.height_m(lon, lat)
    np.testing.assert_array_equal(zipped.height_m(lon, lat), expected)
    np.testing.assert_array_equal(renamed.height_m(lon, lat), expected)
    assert zipped.tile_names == ["N42E001"]


def test_one_arc_second_tile_is_recognised_by_size(tmp_path: Path) -> None:
    n = 3601
    grid = np.tile(np.arange(n, dtype=np.int16), (n, 1))  # +1 m per post eastwards
    model = ElevationModel.from_files([write_hgt(tmp_path / "N42E001.hgt", grid)])
    np.testing.assert_allclose(model.height_m(np.array([1.5]), np.array([42.3])), [1800.0])


def test_southern_western_tile_and_uncovered_points(tmp_path: Path) -> None:
    model = ElevationModel.from_files([write_hgt(tmp_path / "S34W058.hgt", plane())])
    lon, lat = np.array([-57.5, -55.5]), np.array([-33.5, -33.5])
    h = model.height_m(lon, lat)
    assert h[0] == pytest.approx(plane_height(-57.5, -33.5, lat0=-34, lon0=-58))
    assert np.isnan(h[1])
    assert model.missing_tiles(lon, lat) == {"S34W056": 1}


@pytest.mark.parametrize(
    ("name", "payload", "match"),
    [
        ("N42E001.hgt", b"\x00" * 1000, "1000 bytes"),
        ("andorra.hgt", plane().astype(">i2").tobytes(), "andorra.hgt.*SRTM tile"),
    ],
)
def test_bad_files_raise(tmp_path: Path, name: str, payload: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(ElevationError, match=match):
        ElevationModel.from_files([path])


def test_zip_without_hgt_and_missing_file_raise(tmp_path: Path) -> None:
    empty = tmp_path / "N42E001.hgt.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no heights here")
    with pytest.raises(ElevationError, match=r"N42E001\.hgt\.zip.*found 0"):
        ElevationModel.from_files([empty])
    with pytest.raises(ElevationError, match=r"no such elevation file.*N43E001"):
        ElevationModel.from_files([tmp_path / "N43E001.hgt"])
    not_zip = tmp_path / "N44E001.hgt.zip"
    not_zip.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ElevationError, match=r"N44E001\.hgt\.zip"):
        ElevationModel.from_files([not_zip])


def test_climb_on_a_ramp_is_exact_both_ways() -> None:
    model = ElevationModel({"N42E001": plane()})
    east = [(1.2, 42.5), (1.23, 42.5), (1.3, 42.5)]  # +2 m per post → +240 m
    west = east[::-1]
    table = table_from_lines([east, west])
    up, down, node_elev = segment_climb(table, model)
    np.testing.assert_allclose(up, [240.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(down, [0.0, 240.0], atol=1e-6)
    lon, lat = table.node_lon, table.node_lat
    np.testing.assert_allclose(node_elev, plane_height(lon, lat), atol=1e-6)
    assert up.dtype == down.dtype == node_elev.dtype == np.float64


def test_climb_over_a_hill_counts_both_sides() -> None:
    _, col = np.mgrid[0:N, 0:N]
    # A ridge along a meridian: 500 m at column 600, falling 1 m per post either side.
    ridge = (500 - np.abs(col - 600)).astype(np.int16)
    model = ElevationModel({"N42E001": ridge})
    up, down, node_elev = segment_climb(table_from_lines([[(1.4, 42.5), (1.6, 42.5)]]), model)
    np.testing.assert_allclose(node_elev, [380.0, 380.0], atol=1e-6)
    # Smoothing rounds the sharp crest by at most a few metres.
    assert 115.0 < up[0] <= 120.0 + 1e-9
    assert up[0] == pytest.approx(down[0])


def test_smoothing_damps_post_noise() -> None:
    rng = np.random.default_rng(7)
    noisy = (200 + rng.integers(-2, 3, size=(N, N))).astype(np.int16)
    model = ElevationModel({"N42E001": noisy})
    line = [(1.3, 42.5), (1.33, 42.51)]  # ~2.6 km of flat ground with ±2 m noise
    up, down, _ = segment_climb(table_from_lines([line]), model)
    t = np.linspace(0, 1, 131)
    raw = model.height_m(1.3 + 0.03 * t, 42.5 + 0.01 * t)
    raw_up = np.maximum(np.diff(raw), 0).sum()
    assert up[0] < 0.6 * raw_up
    assert up[0] - down[0] == pytest.approx(raw[-1] - raw[0])


def test_voids_are_filled_along_the_segment() -> None:
    grid = plane()
    holed = grid.copy()
    holed[280:320, 400:700] = -32768  # 42.733-42.767 N, 1.333-1.583 E
    full, with_void = ElevationModel({"N42E001": grid}), ElevationModel({"N42E001": holed})
    assert np.isnan(with_void.height_m(np.array([1.45]), np.array([42.75])))[0]
    # Along a parallel the plane is linear in distance, so filling along it is exact.
    line = [(1.3, 42.75), (1.45, 42.75), (1.6, 42.75)]
    table = table_from_lines([line])
    for got, want in zip(segment_climb(table, with_void), segment_climb(table, full), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_node_on_a_void_takes_the_nearest_post() -> None:
    holed = plane()
    holed[598:603, 598:603] = -32768
    model = ElevationModel({"N42E001": holed})
    up, down, node_elev = segment_climb(table_from_lines([[(1.5, 42.5), (1.52, 42.5)]]), model)
    assert np.isfinite(node_elev).all()
    assert abs(node_elev[0] - plane_height(1.5, 42.5)) <= 3 * 3 + 2 * 3  # ≤ 3 posts away
    assert up[0] - down[0] == pytest.approx(node_elev[1] - node_elev[0])


def test_missing_tile_error_names_the_tile() -> None:
    model = ElevationModel({"N42E001": plane()})
    table = table_from_lines([[(1.9, 42.5), (2.1, 42.5)], [(1.5, 42.2), (1.6, 42.3)]])
    with pytest.raises(ElevationError, match=r"N42E002 \(needed by \d+ points\).*N42E002\.hgt"):
        segment_climb(table, model)


def test_many_segments_match_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    row, col = np.mgrid[0:N, 0:N]
    hills = (800 + 300 * np.sin(row / 70.0) * np.cos(col / 45.0)).astype(np.int16)
    model = ElevationModel({"N42E001": hills})
    lines = []
    for _ in range(40):
        k = int(rng.integers(2, 6))
        start = rng.uniform([1.1, 42.1], [1.9, 42.9])
        steps = rng.normal(0, 0.002, size=(k - 1, 2))
        pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
        lines.append([(float(x), float(y)) for x, y in pts])
    up, down, _ = segment_climb(table_from_lines(lines), model)
    for i, line in enumerate(lines):
        one_up, one_down, _ = segment_climb(table_from_lines([line]), model)
        assert up[i] == pytest.approx(one_up[0], abs=1e-9)
        assert down[i] == pytest.approx(one_down[0], abs=1e-9)
    assert (up >= 0).all()
    assert (down >= 0).all()


def test_real_andorra_tile() -> None:
    if not ANDORRA_TILE.is_file():
        pytest.skip(f"real SRTM tile not found at {ANDORRA_TILE} (../shared/data is absent)")
    model = ElevationModel.from_files([ANDORRA_TILE])
    h = model.height_m(np.array([1.5218, 1.4444]), np.array([42.5063, 42.5917]))
    assert 1000 <= h[0] <= 1100  # Andorra la Vella
    assert h[1] > 2500  # near Pic de Coma Pedrosa
    # The road from Andorra la Vella up to Encamp climbs about 250 m.
    table = table_from_lines([[(1.5218, 42.5063), (1.5800, 42.5345)]])
    up, down, node_elev = segment_climb(table, model)
    assert up[0] - down[0] == pytest.approx(node_elev[1] - node_elev[0])
    assert up[0] > 100
