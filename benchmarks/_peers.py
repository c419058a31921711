"""The peers, on the same CSR arrays and the same per-edge weights as airpath.

* networkx ``bidirectional_dijkstra`` with the weight named by its attribute, on the
  ``MultiDiGraph`` osmnx builds (every street segment an edge, parallel ones kept): the
  call green-routes-demo makes. On a multigraph networkx takes, per edge relaxation, the
  least weight over the parallel edges, which makes it about twice as slow as on a
  ``DiGraph`` holding only the cheapest of them (same costs); that stricter variant is
  timed too (``multi=False``).
* igraph ``Graph.get_shortest_path(..., weights=<edge attribute>, output="epath")`` —
  what Green Paths does; igraph keeps parallel edges, so edge ids are airpath's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import igraph
import networkx as nx
import numpy as np

from airpath.network.store import Network


def _cheapest_parallel(
    tail: np.ndarray, head: np.ndarray, weights: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    # Edges are in CSR order (by tail, then head), so parallel edges are adjacent.
    first = np.ones(len(tail), dtype=bool)
    first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
    starts = np.flatnonzero(first)
    return (
        tail[starts],
        head[starts],
        {
            k: np.minimum.reduceat(np.asarray(w, dtype=np.float64), starts)
            for k, w in weights.items()
        },
    )


def networkx_graph(
    net: Network, weights: Mapping[str, np.ndarray], *, multi: bool = True
) -> tuple[nx.DiGraph, float]:
    """The network as osmnx keeps it (``multi``, one edge per segment), or as a
    ``DiGraph`` with the cheapest of parallel edges per weight; and the seconds taken."""
    t0 = time.perf_counter()
    tail, head = np.asarray(net.edge_tail), np.asarray(net.edge_head)
    if multi:
        g: nx.DiGraph = nx.MultiDiGraph()
        w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    else:
        tail, head, w = _cheapest_parallel(tail, head, weights)
        g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    cols = {k: v.tolist() for k, v in w.items()}
    keys = list(cols)
    g.add_edges_from(
        (u, v, dict(zip(keys, vals, strict=True)))
        for u, v, *vals in zip(tail.tolist(), head.tolist(), *cols.values(), strict=True)
    )
    return g, time.perf_counter() - t0


def igraph_graph(net: Network, weights: Mapping[str, np.ndarray]) -> tuple[igraph.Graph, float]:
    t0 = time.perf_counter()
    edges = np.column_stack([np.asarray(net.edge_tail), np.asarray(net.edge_head)]).tolist()
    g = igraph.Graph(n=net.n_nodes, edges=edges, directed=True)
    for k, w in weights.items():
        g.es[k] = np.asarray(w, dtype=np.float64).tolist()
    return g, time.perf_counter() - t0


def networkx_query(
    g: nx.DiGraph, key: str, sink: dict[int, Any]
) -> Callable[[int, int, int], None]:
    """A timed call; its answer (the cost) goes to ``sink[i]`` (a dict store, ~50 ns)."""

    def run(i: int, s: int, t: int) -> None:
        sink[i] = nx.bidirectional_dijkstra(g, s, t, weight=key)[0]

    return run


def igraph_query(
    g: igraph.Graph, key: str, sink: dict[int, Any]
) -> Callable[[int, int, int], None]:
    """A timed call; its answer (the edge path) goes to ``sink[i]``."""

    def run(i: int, s: int, t: int) -> None:
        sink[i] = g.get_shortest_path(s, t, weights=key, output="epath")

    return run


def versions() -> dict[str, str]:
    return {"networkx": nx.__version__, "igraph": igraph.__version__}
