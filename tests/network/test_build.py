"""Network import and the on-disk format, on the embedded extract and the shared OSM data."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from airpath import NetworkFormatError, load_network
from airpath.errors import EmptyNetworkError, SourceError
from airpath.network.profile import load_profile
from airpath.network.sources import build_from_sources
from shared import shared_data


def test_helsinki_network_is_complete(helsinki, helsinki_dir):
    m = helsinki.manifest
    assert m["format_version"] == 1
    assert m["profile"] == "bicycle"
    assert m["counts"]["nodes"] == helsinki.n_nodes > 2000
    assert m["counts"]["edges"] == helsinki.n_edges > 5000
    assert m["report"]["dropped_nodes"] >= 0
    assert m["report"]["strong_components"] >= 1
    lon0, lat0, lon1, lat1 = m["bbox"]
    assert 24.9 < lon0 < lon1 < 25.0
    assert 60.1 < lat0 < lat1 < 60.2
    # CSR invariants
    indptr, head, tail = helsinki.indptr, helsinki.edge_head, helsinki.edge_tail
    assert indptr[0] == 0
    assert indptr[-1] == helsinki.n_edges
    assert np.all(np.diff(tail) >= 0)
    assert np.all(tail[indptr[5] : indptr[6]] == 5)
    assert np.all(head[helsinki.rev_edge[helsinki.rev_indptr[7] : helsinki.rev_indptr[8]]] == 7)
    assert np.all(helsinki.edge_length_m > 0)
    assert np.all(helsinki.edge_duration_s > 0)
    assert np.all(helsinki.edge_inhaled_m3 > 0)
    assert np.all(helsinki.edge_prior_ugm3 > 0)
    # Geometry runs from the edge's tail node to its head node.
    e = 123
    pts = helsinki.edge_geometry(e)
    assert pts[0] == pytest.approx((helsinki.node_lon[tail[e]], helsinki.node_lat[tail[e]]))
    assert pts[-1] == pytest.approx((helsinki.node_lon[head[e]], helsinki.node_lat[head[e]]))
    # The edge table for Spark joins.
    df = pd.read_parquet(helsinki_dir / "edges.parquet")
    assert len(df) == helsinki.n_edges
    assert df["edge_id"].tolist()[:3] == [0, 1, 2]
    assert {"geometry", "prior_no2_ugm3", "name", "infra", "length_m"} <= set(df.columns)


def test_network_loads_memory_mapped_and_fast(helsinki_dir):
    t = time.perf_counter()
    net = load_network(helsinki_dir)
    assert time.perf_counter() - t < 0.5  # a sanity bound; BENCHMARKS.md has real timings
    assert isinstance(net.edge_length_m.base, np.memmap)  # backed by the file, not a copy


def test_incompatible_or_missing_network(tmp_path, helsinki_dir):
    with pytest.raises(NetworkFormatError, match="not a network"):
        load_network(tmp_path)
    manifest = json.loads((helsinki_dir / "manifest.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(NetworkFormatError, match="rebuild"):
        load_network(bad)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"this is not osm", SourceError),
        (b"<?xml version='1.0'?><osm version='0.6'></osm>", EmptyNetworkError),
    ],
)
def test_bad_osm_files(tmp_path, content, error):
    f = tmp_path / "x.osm"
    f.write_bytes(content)
    with pytest.raises(error):
        build_from_sources([str(f)], tmp_path / "net")


def test_unknown_source(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("a,b\n")
    with pytest.raises(SourceError, match="unknown source"):
        build_from_sources([str(f)], tmp_path / "net")
    with pytest.raises(SourceError, match="no such"):
        build_from_sources([str(tmp_path / "missing.osm.pbf")], tmp_path / "net")


def test_bad_profile_file(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("name = 'x'\n")
    with pytest.raises(SourceError, match="profile"):
        load_profile(f)


@pytest.mark.parametrize(
    "name",
    [
        "liechtenstein-latest.osm.pbf",
        "andorra.osm.pbf",
        "monaco.osm.gz",
        "baltimore.osm.pbf",
        "paris_bss.osm.pbf",
    ],
)
def test_shared_osm_extracts_build(tmp_path, name):
    src = shared_data("osm", name)
    report = build_from_sources([str(src)], tmp_path / "net")
    net = load_network(tmp_path / "net")
    assert net.n_edges == report.edges > 1000
    assert report.dropped_edges < 0.2 * report.edges


def test_xml_bz2_reads_like_gz(tmp_path):
    import bz2
    import gzip

    src = shared_data("osm", "monaco.osm.gz")
    xml = gzip.decompress(src.read_bytes())
    (tmp_path / "monaco.osm.bz2").write_bytes(bz2.compress(xml))
    (tmp_path / "monaco.osm").write_bytes(xml)
    a = build_from_sources([str(src)], tmp_path / "a")
    b = build_from_sources([str(tmp_path / "monaco.osm.bz2")], tmp_path / "b")
    c = build_from_sources([str(tmp_path / "monaco.osm")], tmp_path / "c")
    assert a.edges == b.edges == c.edges


def test_barcelona_builds_with_city_priors_and_routes(tmp_path):
    from airpath import Router

    folder = shared_data("bcn")
    report = build_from_sources([str(folder)], tmp_path / "bcn")
    net = load_network(tmp_path / "bcn")
    assert report.edges > 25_000
    lon0, lat0, lon1, lat1 = net.manifest["bbox"]
    assert 2.05 < lon0 < lon1 < 2.23 and 41.31 < lat0 < lat1 < 41.47  # noqa: PT018
    no2 = np.asarray(net.edge_prior_ugm3[0])
    # Class midpoints from the city map (5, 15, 25, ... 75), placeholder only where missing.
    assert np.isin(no2, [15, 25, 35, 45, 55, 65, 75]).mean() > 0.98
    result = Router(net).route((41.3870, 2.1700), (41.4036, 2.1744), alternatives=1)
    assert 2000 < result.best.distance_m < 4000
    assert result.best.mean_concentration_ugm3 > 15


def test_andorra_with_elevation_climbs(tmp_path):
    from airpath import Router

    pbf = shared_data("osm", "andorra.osm.pbf")
    tile = shared_data("elevation", "N42E001.hgt.zip")
    build_from_sources([str(pbf)], tmp_path / "ad", elevation=[str(tile)])
    net = load_network(tmp_path / "ad")
    assert net.manifest["elevation"] is True
    assert np.nanmin(net.node_elevation_m) > 800 and np.nanmax(net.node_elevation_m) < 3000  # noqa: PT018
    router = Router(net)
    up = router.route((42.5063, 1.5218), (42.5340, 1.5800), "fastest").best
    down = router.route((42.5340, 1.5800), (42.5063, 1.5218), "fastest").best
    assert up.climb_m > 150 and down.descent_m > 150  # noqa: PT018
    assert up.duration_s > 1.3 * down.duration_s  # slower uphill


def test_missing_elevation_tile_is_named(tmp_path, capsys):
    from airpath.cli import main

    pbf = shared_data("osm", "liechtenstein-latest.osm.pbf")
    tile = shared_data("elevation", "N42E001.hgt.zip")
    code = main(
        ["network", "build", str(pbf), "--out", str(tmp_path / "li"), "--elevation", str(tile)]
    )
    assert code == 2
    assert "N47E009" in capsys.readouterr().err
