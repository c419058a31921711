"""The on-disk network format, and :class:`Network`, a network loaded from it.

A network is a directory::

    manifest.json         format version, source, profile, counts, bbox, build time, report
    <array>.npy           one NumPy array per file, loaded with memory mapping
    names.json            street names; ``segment_name`` indexes into it
    edges.parquet         one row per directed edge with attributes and WKB geometry
                          (for Spark joins and GIS tools; the router does not read it)

Directed edges are numbered in CSR order: the out-edges of node ``n`` are
``indptr[n]:indptr[n+1]``, so edge ``e`` goes from ``edge_tail[e]`` to ``edge_head[e]``.
``rev_edge[rev_indptr[n]:rev_indptr[n+1]]`` lists the edges into ``n`` (for backward
searches). A pollution field is a set of per-edge arrays in this edge order.

Writing goes to a temporary sibling directory that is renamed into place at the end, so
a reader never sees half a network.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.errors import NetworkFormatError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"

NODE_ARRAYS = ("node_lon", "node_lat", "node_elevation_m", "cch_order")
EDGE_ARRAYS = (
    "edge_tail",
    "edge_head",
    "edge_segment",
    "edge_reversed",
    "edge_mode",
    "edge_infra",
    "edge_length_m",
    "edge_duration_s",
    "edge_inhaled_m3",
    "edge_climb_m",
    "edge_descent_m",
    "rev_edge",
)
OTHER_ARRAYS = (
    "indptr",
    "rev_indptr",
    "edge_prior_ugm3",
    "geom_offsets",
    "geom_lonlat",
    "segment_name",
)
ALL_ARRAYS = NODE_ARRAYS + EDGE_ARRAYS + OTHER_ARRAYS


@dataclass(frozen=True)
class Network:
    """A routable network: topology, per-edge attributes and geometry (read-only arrays).

    Load one with :func:`load_network`. ``edge_prior_ugm3`` has shape
    ``(len(POLLUTANTS), n_edges)``.
    """

    path: Path
    manifest: Mapping[str, Any]
    arrays: Mapping[str, npt.NDArray[Any]]
    names: tuple[str, ...]

    def __getattr__(self, name: str) -> npt.NDArray[Any]:
        # Arrays read as attributes: network.edge_length_m, network.indptr, ...
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    @functools.cached_property
    def names_array(self) -> npt.NDArray[np.object_]:
        """Street names as an object array, for vectorised lookups by segment."""
        return np.asarray(self.names or ("",), dtype=object)

    @functools.cached_property
    def name_keys(self) -> npt.NDArray[np.int64]:
        """Per index into ``names_array``, the index of the first equal name: two names
        are equal exactly when their keys are, so compiled code can compare street names
        as integers (a network's builder makes names unique, but nothing else need)."""
        _, first, inverse = np.unique(self.names_array, return_index=True, return_inverse=True)
        keys: npt.NDArray[np.int64] = first[inverse].astype(np.int64)
        return keys

    @property
    def n_nodes(self) -> int:
        return int(self.manifest["counts"]["nodes"])

    @property
    def n_edges(self) -> int:
        return int(self.manifest["counts"]["edges"])

    @property
    def pollutants(self) -> tuple[str, ...]:
        return tuple(self.manifest["pollutants"])

    def edge_geometry(self, e: int) -> npt.NDArray[np.float64]:
        """(lon, lat) points of edge ``e`` in travel order."""
        s = int(self.arrays["edge_segment"][e])
        off = self.arrays["geom_offsets"]
        pts = np.asarray(self.arrays["geom_lonlat"][off[s] : off[s + 1]])
        return pts[::-1] if self.arrays["edge_reversed"][e] else pts

    def edge_name(self, e: int) -> str:
        return self.names[int(self.arrays["segment_name"][int(self.arrays["edge_segment"][e])])]


def write_network(
    out_dir: str | Path,
    arrays: Mapping[str, npt.NDArray[Any]],
    names: list[str],
    manifest: dict[str, Any],
    edge_table: Any,
) -> Path:
    """Write a network directory atomically (temporary sibling, then rename)."""
    out = Path(out_dir)
    missing = set(ALL_ARRAYS) - set(arrays)
    if missing:
        raise ValueError(f"network arrays missing: {sorted(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{time.time_ns()}")
    tmp.mkdir()
    try:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        (tmp / "names.json").write_text(json.dumps(names, ensure_ascii=False))
        edge_table.to_parquet(tmp / "edges.parquet", index=False)
        manifest = {**manifest, "format_version": FORMAT_VERSION}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        if out.exists():
            old = out.with_name(f".{out.name}.old-{time.time_ns()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_network(path: str | Path) -> Network:
    """Load a network written by ``airpath network build`` (arrays memory-mapped)."""
    p = Path(path)
    try:
        manifest = json.loads((p / MANIFEST).read_text())
    except FileNotFoundError:
        raise NetworkFormatError(f"{p}: not a network directory (no {MANIFEST})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise NetworkFormatError(f"{p}: unreadable {MANIFEST}: {exc}") from exc
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise NetworkFormatError(
            f"{p}: network format version {version!r}, this airpath reads {FORMAT_VERSION}; "
            "rebuild it with `airpath network build`"
        )
    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        for name in ALL_ARRAYS:
            # A plain ndarray view of the mapping: same pages, without np.memmap's
            # per-item __getitem__ overhead on the router's hot paths.
            mapped = np.load(p / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            arrays[name] = mapped.view(np.ndarray)
        names = tuple(json.loads((p / "names.json").read_text()))
    except (OSError, ValueError) as exc:
        raise NetworkFormatError(f"{p}: incomplete or corrupt network: {exc}") from exc
    n, m = manifest["counts"]["nodes"], manifest["counts"]["edges"]
    if arrays["indptr"].shape != (n + 1,) or arrays["edge_head"].shape != (m,):
        raise NetworkFormatError(f"{p}: array sizes do not match the manifest")
    return Network(path=p, manifest=manifest, arrays=arrays, names=names)
