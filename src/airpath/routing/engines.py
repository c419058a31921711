"""The two exact engines behind the router, over one network.

* :class:`CCHEngine` — RoutingKit's customizable contraction hierarchy (``routingkit_cch``)
  for preset profiles. The hierarchy (node order + topology) is built once per network; a
  *metric* is one customisation with integer weights, rebuilt whenever a profile's weights
  change. Integer weights are the float weights times a scale chosen per metric so that
  no shortest path can overflow RoutingKit's 31-bit infinity (see :func:`weight_scale`).
* :func:`flexible` — the numba bidirectional Dijkstra of :mod:`.kernels` on float weights
  given per request.

Both take *endpoints*: the graph nodes a search may start from (or end at) with the cost
of the partial edge between the snapped point and that node.
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import routingkit_cch

from airpath.network.store import Network
from airpath.routing import kernels
from airpath.routing.detail_kernels import Piece
from airpath.routing.result import Between, Path

INF_WEIGHT = 2**31 - 1  # RoutingKit's inf_weight


class Endpoint(NamedTuple):
    """A node the search starts/ends at, its partial-edge cost and the piece it adds.

    A named tuple: a query makes a few per search, and a tuple is made in a third of
    the time of a frozen dataclass."""

    node: int
    cost: float
    piece: Piece


def weight_scale(w: npt.NDArray[np.float64], hop_bound: int) -> float:
    """Largest scale for ``w`` such that any shortest path, plus two partial edges at its
    ends, stays below RoutingKit's infinity. A shortest path costs at most ``hop_bound``
    edges times the largest weight (``hop_bound`` bounds the hops of some path between any
    two nodes, see :func:`airpath.network.build._hop_bound`)."""
    top = float(w.max()) if len(w) else 1.0
    return (INF_WEIGHT - 1) / ((hop_bound + 2) * max(top, 1e-9))


class Metric(Protocol):
    """A customised hierarchy for one profile's weights (either binding)."""

    scale: float
    slot: str

    def query(
        self, sources: list[Endpoint], targets: list[Endpoint]
    ) -> tuple[int | None, list[int], list[int]]: ...


class Engine(Protocol):
    def customise(self, w: npt.NDArray[np.float64], slot: str = "") -> Metric: ...


def integer_weights(
    w: npt.NDArray[np.float64], hop_bound: int
) -> tuple[float, npt.NDArray[np.uint32]]:
    """``(scale, floor(w × scale))``: the integer weights either RoutingKit binding takes."""
    scale = weight_scale(w, hop_bound)
    return scale, np.floor(w * scale).astype(np.uint32)


def path_ends(
    tail: npt.NDArray[np.int32], head: npt.NDArray[np.int32], arcs: list[int]
) -> list[int]:
    """``[first node, last node]`` of a non-empty arc path (``[]`` for an empty one)."""
    return [int(tail[arcs[0]]), int(head[arcs[-1]])] if arcs else []


# RoutingKit query objects hold search state and must be used and dropped on the thread
# that made them (the binding refuses otherwise), so each thread keeps its own, per slot
# (profile key), and replaces it on that thread when the slot's metric changes.
_THREAD = threading.local()


class CCHMetric:
    """One customised metric: integer weights bound to the shared hierarchy."""

    def __init__(
        self,
        cch: routingkit_cch.CCH,
        w: npt.NDArray[np.float64],
        hop_bound: int,
        slot: str = "",
        *,
        tail: npt.NDArray[np.int32],
        head: npt.NDArray[np.int32],
    ) -> None:
        self.slot = slot
        self._tail, self._head = tail, head  # the network's edge ends, for path end nodes
        self.scale, self.int_weights = integer_weights(w, hop_bound)
        # The binding takes any sequence of ints; a uint32 array avoids a million-item list.
        self._metric = routingkit_cch.CCHMetric(cch, self.int_weights)  # type: ignore[arg-type]

    def _query(self) -> routingkit_cch.CCHQuery:
        cache: dict[str, tuple[CCHMetric, routingkit_cch.CCHQuery]] | None = getattr(
            _THREAD, "queries", None
        )
        if cache is None:
            cache = _THREAD.queries = {}
        entry = cache.get(self.slot)
        if entry is None or entry[0] is not self:
            cache.pop(self.slot, None)  # drop the stale query here, on its own thread
            entry = cache[self.slot] = (self, routingkit_cch.CCHQuery(self._metric))
        return entry[1]

    def query(
        self, sources: list[Endpoint], targets: list[Endpoint]
    ) -> tuple[int | None, list[int], list[int]]:
        """``(distance, [first node, last node], arc_path)``; distance None when
        unreachable. The binding builds a fresh list on every path access, so only the arc
        path is read; the end nodes come from it (or from the node path when empty)."""
        res = self._query().run_multi(
            [(ep.node, int(ep.cost * self.scale)) for ep in sources],
            [(ep.node, int(ep.cost * self.scale)) for ep in targets],
        )
        dist = res.distance
        arcs: list[int] = res.arc_path if dist is not None else []
        ends = path_ends(self._tail, self._head, arcs) or list(res.node_path)
        del res  # RoutingKit wants the result dropped before the next run
        return dist, ends, arcs


class CCHEngine:
    """The contraction hierarchy of one network (topology only, no weights)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.hop_bound = int(network.manifest["hop_bound"])
        self.cch = routingkit_cch.CCH(
            np.asarray(network.cch_order).tolist(),
            np.asarray(network.edge_tail).tolist(),
            np.asarray(network.edge_head).tolist(),
            False,
        )

    def customise(self, w: npt.NDArray[np.float64], slot: str = "") -> CCHMetric:
        return CCHMetric(
            self.cch,
            w,
            self.hop_bound,
            slot,
            tail=self.network.edge_tail,
            head=self.network.edge_head,
        )


def _cheapest(ends: list[Endpoint], node: int) -> Endpoint:
    """The first of the least costly ``ends`` at ``node`` (one exists)."""
    best = None
    for end in ends:
        if end.node == node and (best is None or end.cost < best.cost):
            best = end
    assert best is not None
    return best


def between_from_cch(
    node_path: list[int], arc_path: list[int], sources: list[Endpoint], targets: list[Endpoint]
) -> Between:
    """Pieces of a CCH answer, with the partial first and last edges."""
    first = _cheapest(sources, node_path[0]).piece
    return Between(first, arc_path, _cheapest(targets, node_path[-1]).piece)


def flexible(
    network: Network, w: npt.NDArray[np.float64], sources: list[Endpoint], targets: list[Endpoint]
) -> tuple[float, Path | None]:
    """Least-cost pieces under weights ``w`` (inf cost and None when unreachable)."""
    cost, meet, pf, pb = kernels.bidirectional(
        network.indptr,
        network.edge_head,
        network.rev_indptr,
        network.rev_edge,
        network.edge_tail,
        w,
        np.array([s.node for s in sources], dtype=np.int64),
        np.array([s.cost for s in sources], dtype=np.float64),
        np.array([t.node for t in targets], dtype=np.int64),
        np.array([t.cost for t in targets], dtype=np.float64),
    )
    if meet < 0:
        return float("inf"), None
    tails, heads = network.edge_tail, network.edge_head
    back: list[int] = []
    n = meet
    while pf[n] >= 0:
        back.append(int(pf[n]))
        n = int(tails[pf[n]])
    first = n
    fwd: list[int] = []
    n = meet
    while pb[n] >= 0:
        fwd.append(int(pb[n]))
        n = int(heads[pb[n]])
    arcs = back[::-1] + fwd
    nodes = [first, n]
    return float(cost), between_from_cch(nodes, arcs, sources, targets).path()
