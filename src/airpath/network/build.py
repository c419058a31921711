"""From a :class:`SegmentTable` to a routable on-disk network.

Steps: elevation (optional) → directed edges with grade-aware speed, duration and inhaled
air volume → priors (the source's own, else :func:`~airpath.network.priors.lur_prior`
for OpenStreetMap and the placeholder for other sources) → largest strongly connected
component → CSR order → contraction order for the CCH → write. The manifest names the
prior under ``"prior"``.
"""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import routingkit_cch
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, shortest_path

from airpath.errors import EmptyNetworkError
from airpath.exposure import model as exposure
from airpath.network.priors import LUR_PRIOR, lur_prior, placeholder_prior
from airpath.network.profile import BicycleProfile
from airpath.network.segments import INFRA_CLASSES, MODE_WALK, POLLUTANTS, SegmentTable
from airpath.network.store import write_network

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildReport:
    """What a build kept and dropped."""

    path: Path
    nodes: int
    edges: int
    segments: int
    length_km: float
    dropped_nodes: int
    dropped_edges: int
    dropped_length_km: float
    components: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.nodes:,} nodes, {self.edges:,} directed edges, {self.length_km:,.1f} km of "
            f"street; dropped {self.dropped_nodes:,} nodes and {self.dropped_edges:,} edges "
            f"({self.dropped_length_km:,.1f} km) outside the largest strongly connected "
            f"component (of {self.components:,}); built in {self.seconds:.1f} s"
        )


def build_network(
    table: SegmentTable,
    out_dir: str | Path,
    profile: BicycleProfile,
    *,
    climb: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    sources: Sequence[str] = (),
    progress: Progress = lambda _msg: None,
) -> BuildReport:
    """Build and write a network from ``table``.

    ``climb`` is ``(climb_fwd_m, descent_fwd_m, node_elevation_m)`` per segment/node, as
    :func:`airpath.network.elevation.segment_climb` returns, or None for flat ground.
    """
    t0 = dt.datetime.now(dt.UTC)
    table.validate()
    m_seg = table.n_segments
    if climb is None:
        up, down = np.zeros(m_seg), np.zeros(m_seg)
        node_elev = np.full(table.n_nodes, np.nan)
    else:
        up, down, node_elev = (np.asarray(a, dtype=np.float64) for a in climb)

    progress("computing priors")
    priors, prior_name = _priors(table)

    progress("making directed edges")
    fwd = table.mode_fwd > 0
    bwd = table.mode_bwd > 0
    seg = np.concatenate([np.flatnonzero(fwd), np.flatnonzero(bwd)])
    rev = np.concatenate([np.zeros(fwd.sum(), bool), np.ones(bwd.sum(), bool)])
    tail = np.where(rev, table.v[seg], table.u[seg])
    head = np.where(rev, table.u[seg], table.v[seg])
    mode = np.where(rev, table.mode_bwd[seg], table.mode_fwd[seg]).astype(np.int8)
    length = table.length_m[seg]
    e_up = np.where(rev, down[seg], up[seg])
    e_down = np.where(rev, up[seg], down[seg])
    grade = np.where(length > 1.0, (e_up - e_down) / np.maximum(length, 1.0), 0.0)
    speed, ventilation = exposure.riding(table.speed_kph[seg], grade)
    walk = mode == MODE_WALK
    speed = np.where(walk, np.minimum(table.speed_kph[seg], profile.walk_speed_kph), speed)
    ventilation = np.where(walk, exposure.WALK_VENTILATION_LPM, ventilation)
    duration = length / (speed / 3.6)
    inhaled = exposure.inhaled_m3(ventilation, duration)

    progress("keeping the largest strongly connected component")
    n = table.n_nodes
    graph = csr_matrix((np.ones(len(seg)), (tail, head)), shape=(n, n))
    n_comp, labels = connected_components(graph, directed=True, connection="strong")
    biggest = np.argmax(np.bincount(labels))
    keep_node = labels == biggest
    keep_edge = keep_node[tail] & keep_node[head]
    if not keep_edge.any():
        raise EmptyNetworkError("no two junctions are connected both ways")
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[keep_node] = np.arange(keep_node.sum())
    tail, head = new_id[tail[keep_edge]], new_id[head[keep_edge]]
    order = np.lexsort((head, tail))  # CSR order: by tail, then head
    tail, head = tail[order], head[order]
    idx = np.flatnonzero(keep_edge)[order]
    seg, rev, mode = seg[idx], rev[idx], mode[idx]
    length, e_up, e_down = length[idx], e_up[idx], e_down[idx]
    duration, inhaled, speed = duration[idx], inhaled[idx], speed[idx]
    n_new, m_new = int(keep_node.sum()), len(tail)

    # Renumber the segments that survive so geometry is stored once per kept segment.
    used_seg, seg_new = np.unique(seg, return_inverse=True)
    off = table.geom_offsets
    counts = off[used_seg + 1] - off[used_seg]
    geom_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    take = np.concatenate([np.arange(off[s], off[s + 1]) for s in used_seg])
    geom_lonlat = table.geom_lonlat[take]
    names, name_idx = np.unique(table.name[used_seg].astype(str), return_inverse=True)

    indptr = np.concatenate([[0], np.cumsum(np.bincount(tail, minlength=n_new))])
    rev_edge = np.lexsort((tail, head)).astype(np.int32)
    rev_indptr = np.concatenate([[0], np.cumsum(np.bincount(head, minlength=n_new))])
    node_lon, node_lat = table.node_lon[keep_node], table.node_lat[keep_node]

    progress("ordering nodes for the contraction hierarchy")
    cch_order = np.asarray(
        routingkit_cch.compute_order_inertial(
            n_new, tail.tolist(), head.tolist(), node_lat.tolist(), node_lon.tolist()
        ),
        dtype=np.int32,
    )
    hops = _hop_bound(tail, head, n_new)

    prior = np.stack([priors[p][seg] for p in POLLUTANTS]).astype(np.float32)
    arrays: dict[str, np.ndarray] = {
        "node_lon": node_lon,
        "node_lat": node_lat,
        "node_elevation_m": node_elev[keep_node].astype(np.float32),
        "cch_order": cch_order,
        "edge_tail": tail.astype(np.int32),
        "edge_head": head.astype(np.int32),
        "edge_segment": seg_new.astype(np.int32),
        "edge_reversed": rev,
        "edge_mode": mode,
        "edge_infra": table.infra[seg],
        "edge_length_m": length,
        "edge_duration_s": duration,
        "edge_inhaled_m3": inhaled,
        "edge_climb_m": e_up,
        "edge_descent_m": e_down,
        "rev_edge": rev_edge,
        "indptr": indptr.astype(np.int64),
        "rev_indptr": rev_indptr.astype(np.int64),
        "edge_prior_ugm3": prior,
        "geom_offsets": geom_offsets,
        "geom_lonlat": geom_lonlat,
        "segment_name": name_idx.astype(np.int32),
    }

    progress("writing the edge table")
    edge_table = _edge_table(arrays, table, used_seg, speed, names)
    seconds = (dt.datetime.now(dt.UTC) - t0).total_seconds()
    dropped_len = float(table.length_m[np.setdiff1d(np.arange(m_seg), used_seg)].sum())
    report = BuildReport(
        path=Path(out_dir),
        nodes=n_new,
        edges=m_new,
        segments=len(used_seg),
        length_km=float(table.length_m[used_seg].sum() / 1000),
        dropped_nodes=n - n_new,
        dropped_edges=int((~keep_edge).sum()),
        dropped_length_km=dropped_len / 1000,
        components=int(n_comp),
        seconds=seconds,
    )
    manifest: dict[str, Any] = {
        "source": {"inputs": list(sources), **_jsonable(table.meta)},
        "profile": profile.name,
        "pollutants": list(POLLUTANTS),
        "prior": prior_name,
        "infra_classes": list(INFRA_CLASSES),
        "counts": {"nodes": n_new, "edges": m_new, "segments": len(used_seg)},
        "bbox": [
            float(node_lon.min()),
            float(node_lat.min()),
            float(node_lon.max()),
            float(node_lat.max()),
        ],
        "elevation": climb is not None,
        "hop_bound": hops,
        "built_at": t0.isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 3),
        "built_with": {"python": platform.python_version()},
        "report": {
            "length_km": report.length_km,
            "dropped_nodes": report.dropped_nodes,
            "dropped_edges": report.dropped_edges,
            "dropped_length_km": report.dropped_length_km,
            "strong_components": report.components,
        },
    }
    write_network(out_dir, arrays, names.tolist(), manifest, edge_table)
    return report


def _priors(table: SegmentTable) -> tuple[dict[str, np.ndarray], str]:
    """Per-segment priors and the name the manifest records for them: the source's own
    where finite, filled from the OSM prior or, for other sources, the placeholder."""
    source = str(table.meta.get("source", "unknown"))
    if source == "osm":
        priors, fill = lur_prior(table), LUR_PRIOR
    else:
        priors, fill = placeholder_prior(table.highway, table.infra), "placeholder"
    own_count = 0
    for p in POLLUTANTS:
        own = table.priors.get(p)
        if own is not None:
            finite = np.isfinite(own)
            own_count = max(own_count, int(finite.sum()))
            priors[p] = np.where(finite, own, priors[p])
    if own_count == 0:
        return priors, fill
    name = "barcelona-2022-map" if source == "barcelona" else f"{source}-own"
    return priors, name if own_count == table.n_segments else f"{name}+{fill}"


def _hop_bound(tail: np.ndarray, head: np.ndarray, n: int) -> int:
    """An upper bound on the edge count of a path between any two nodes through node 0:
    its out- plus in-eccentricity in hops. A shortest path under any non-negative weights
    costs at most this many edges times the largest edge weight (used to scale integer
    weights for the CCH without overflow)."""
    graph = csr_matrix((np.ones(len(tail)), (tail, head)), shape=(n, n))
    out = shortest_path(graph, unweighted=True, indices=0)
    into = shortest_path(graph.T.tocsr(), unweighted=True, indices=0)
    return int(np.max(out) + np.max(into)) + 1


def _edge_table(
    a: dict[str, np.ndarray],
    table: SegmentTable,
    used_seg: np.ndarray,
    speed: np.ndarray,
    names: np.ndarray,
) -> pd.DataFrame:
    seg = a["edge_segment"]
    src_seg = used_seg[seg]
    off = a["geom_offsets"]
    lines = shapely.linestrings(
        a["geom_lonlat"], indices=np.repeat(np.arange(len(off) - 1), np.diff(off))
    )
    geoms = lines[seg]
    geoms = np.where(a["edge_reversed"], shapely.reverse(geoms), geoms)
    df = pd.DataFrame(
        {
            "edge_id": np.arange(len(seg), dtype=np.int32),
            "tail": a["edge_tail"],
            "head": a["edge_head"],
            "segment_id": seg,
            "source_id": table.source_id[src_seg],
            "reversed": a["edge_reversed"],
            "name": names[a["segment_name"][seg]],
            "highway": table.highway[src_seg].astype(str),
            "infra": np.asarray(INFRA_CLASSES)[a["edge_infra"]],
            "surface": table.surface[src_seg].astype(str),
            "walk": a["edge_mode"] == MODE_WALK,
            "length_m": a["edge_length_m"],
            "speed_kph": speed,
            "duration_s": a["edge_duration_s"],
            "inhaled_m3": a["edge_inhaled_m3"],
            "climb_m": a["edge_climb_m"],
            "descent_m": a["edge_descent_m"],
        }
    )
    for k, p in enumerate(POLLUTANTS):
        df[f"prior_{p}_ugm3"] = a["edge_prior_ugm3"][k]
    df["geometry"] = shapely.to_wkb(geoms)
    return df


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out
