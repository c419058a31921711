"""The contraction hierarchy for large networks, through the ``pyroutingkit`` binding.

Same RoutingKit CCH as :mod:`.engines`, another binding. ``routingkit-cch`` answers
weighted multi-source queries in one call (the fastest choice while customisation takes
milliseconds), but customises while holding the interpreter lock: on a 1M-edge network
that stalls every query, flexible ones included, for about 2 s per metric while a new
field is applied in the background. ``pyroutingkit`` releases the lock while it
customises (measured: under 5 ms of stall), at the price of a two-call multi-source query
(a many-to-many distance table, then the path of the best pair), which costs a few
microseconds more — nothing next to a query on a large network. The router picks this
engine from :data:`LARGE_NETWORK_EDGES` edges on.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pyroutingkit

from airpath.network.store import Network
from airpath.routing.engines import Endpoint, integer_weights, path_ends

LARGE_NETWORK_EDGES = 200_000


class LargeCCHMetric:
    """One customised metric on a pyroutingkit topology; same query verb as
    :class:`airpath.routing.engines.CCHMetric`."""

    def __init__(
        self,
        topology: pyroutingkit.CCHTopology,
        w: npt.NDArray[np.float64],
        hop_bound: int,
        slot: str,
        *,
        tail: npt.NDArray[np.int32],
        head: npt.NDArray[np.int32],
    ) -> None:
        self.slot = slot
        self.scale, self.int_weights = integer_weights(w, hop_bound)
        self._tail, self._head = tail, head
        self._metric = pyroutingkit.CCHMetric(topology)
        self._metric.customize(self.int_weights)  # releases the GIL while it works
        # The binding does not document whether a metric's query state is shared
        # between threads: one query at a time per metric.
        self._lock = threading.Lock()

    def query(
        self, sources: list[Endpoint], targets: list[Endpoint]
    ) -> tuple[int | None, list[int], list[int]]:
        """``(distance, [first node, last node], arc_path)``; distance None if unreachable.

        Repeated ends (same node and integer cost: a point on a junction is both that
        node and one end of its segment) are searched once. They add rows and columns
        equal to earlier ones to the distance table, whose first minimum is therefore
        the same pair of nodes without them.
        """
        src = list(dict.fromkeys((ep.node, int(ep.cost * self.scale)) for ep in sources))
        tgt = list(dict.fromkeys((ep.node, int(ep.cost * self.scale)) for ep in targets))
        s_nodes = np.array([node for node, _ in src], dtype=np.uint32)
        t_nodes = np.array([node for node, _ in tgt], dtype=np.uint32)
        s_cost = np.array([cost for _, cost in src], dtype=np.int64)
        t_cost = np.array([cost for _, cost in tgt], dtype=np.int64)
        with self._lock:
            if len(src) == 1 and len(tgt) == 1:  # one search, no distance table
                dist, nodes, arcs = self._metric.query(int(s_nodes[0]), int(t_nodes[0]))
                if dist >= pyroutingkit.INF_WEIGHT:
                    return None, [], []
                best = int(dist + s_cost[0] + t_cost[0])
            else:
                table = self._metric.distances_many_to_many(s_nodes, t_nodes).astype(np.int64)
                reachable = table < pyroutingkit.INF_WEIGHT
                if not reachable.any():
                    return None, [], []
                total = np.where(
                    reachable, s_cost[:, None] + table + t_cost[None, :], np.iinfo(np.int64).max
                )
                i, j = np.unravel_index(int(np.argmin(total)), total.shape)
                best = int(total[i, j])
                _dist, nodes, arcs = self._metric.query(int(s_nodes[i]), int(t_nodes[j]))
        return best, path_ends(self._tail, self._head, arcs) or list(nodes), list(arcs)


class LargeCCHEngine:
    """The hierarchy of a large network (topology only), built with nested dissection."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.hop_bound = int(network.manifest["hop_bound"])
        self.topology = pyroutingkit.CCHTopology()
        self.topology.build(
            np.asarray(network.edge_tail, dtype=np.uint32),
            np.asarray(network.edge_head, dtype=np.uint32),
            np.asarray(network.node_lat, dtype=np.float32),
            np.asarray(network.node_lon, dtype=np.float32),
            network.n_nodes,
        )

    def customise(self, w: npt.NDArray[np.float64], slot: str = "") -> LargeCCHMetric:
        return LargeCCHMetric(
            self.topology,
            w,
            self.hop_bound,
            slot,
            tail=self.network.edge_tail,
            head=self.network.edge_head,
        )
