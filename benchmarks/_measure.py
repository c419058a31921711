"""What bench_routing.py times on one network, and the cross-check of every engine's cost.

Every figure is a list of per-call latencies from :func:`time.perf_counter_ns` around one
call, taken in this one thread after warm-up calls on other pairs (numba compiles on the
first call; RoutingKit allocates its query buffers on the first call). The garbage
collector stays on, as in a server, and is run before each series.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import routingkit_cch

from airpath import AirpathError, PollutionField, Router
from airpath.network.store import Network
from airpath.routing import kernels
from airpath.routing import profiles as pf
from airpath.routing.engines import Endpoint, flexible

PRESETS = ("shortest", "fastest", "least_exposure")
POLLUTANT = "no2"
HORIZONS_MIN = (0.0, 15.0, 30.0, 60.0)
PIECE = (-1, 0.0, 0.0)  # node-to-node queries: no partial edge at either end
REL_TOL = 1e-6


class VerificationError(Exception):
    """Two engines disagree on the cost of the same request."""


@dataclass(frozen=True)
class Pairs:
    """Origin–destination node pairs (the timed ones and the warm-up ones)."""

    src: np.ndarray
    dst: np.ndarray
    warm_src: np.ndarray
    warm_dst: np.ndarray

    def __len__(self) -> int:
        return len(self.src)


def make_pairs(n_nodes: int, n: int, seed: int, n_warm: int = 20) -> Pairs:
    rng = np.random.default_rng(seed)
    total = n + n_warm
    src = rng.integers(0, n_nodes, total)
    dst = rng.integers(0, n_nodes, total)
    same = src == dst
    dst[same] = (dst[same] + 1) % n_nodes
    return Pairs(src[:n], dst[:n], src[n:], dst[n:])


def summary(ns: np.ndarray) -> dict[str, float]:
    """Median, 99th percentile, mean and max in milliseconds."""
    if len(ns) == 0:
        return {"n": 0}
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    return {
        "n": len(ms),
        "p50_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


class Series:
    """Named latency series of one graph, plus the raw nanoseconds for the JSON."""

    def __init__(self) -> None:
        self.raw: dict[str, list[int]] = {}
        self.errors: dict[str, dict[str, int]] = {}

    def time(
        self,
        name: str,
        fn: Callable[[int, int, int], Any],
        pairs: Pairs,
        *,
        limit: int | None = None,
        prepare: Callable[[int], None] | None = None,
        untimed: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Time ``fn(i, src, dst)`` over the pairs (the first ``limit``); ``prepare(i)``
        and ``untimed(i)`` run before and after each call, outside the measurement (warm-up
        calls get ``i < 0``). Calls that raise an :class:`AirpathError` are counted by
        type and left out of the figures."""
        for k in range(len(pairs.warm_src)):
            if prepare is not None:
                prepare(-1 - k)
            with contextlib.suppress(AirpathError):
                fn(-1 - k, int(pairs.warm_src[k]), int(pairs.warm_dst[k]))
            if untimed is not None:
                untimed(-1 - k)
        n = len(pairs) if limit is None else min(limit, len(pairs))
        out = np.full(n, -1, dtype=np.int64)
        errors: dict[str, int] = {}
        gc.collect()
        for i in range(n):
            s, t = int(pairs.src[i]), int(pairs.dst[i])
            if prepare is not None:
                prepare(i)
            t0 = time.perf_counter_ns()
            try:
                fn(i, s, t)
                out[i] = time.perf_counter_ns() - t0
            except AirpathError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if untimed is not None:
                untimed(i)
        self.raw[name] = out.tolist()
        if errors:
            self.errors[name] = errors
        return out

    def stats(self, name: str, limit: int | None = None) -> dict[str, float]:
        ns = np.asarray(self.raw[name][:limit] if limit else self.raw[name])
        return summary(ns[ns >= 0])


def preset_key(router: Router, profile: str) -> str:
    return pf.make_spec(profile, POLLUTANT, tuple(router.field.concentration_ugm3)).key


def balanced_weights(net: Network, fld: PollutionField, alpha: float) -> np.ndarray:
    spec = pf.make_spec("balanced", POLLUTANT, tuple(fld.concentration_ugm3), alpha)
    return pf.weights(net, spec, fld.now(POLLUTANT))


def node_latlon(net: Network) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(net.node_lat, dtype=np.float64), np.asarray(net.node_lon, dtype=np.float64)


def perturbed_field(
    net: Network, base: PollutionField, seed: int, horizons_min: Sequence[float] = (0.0,)
) -> PollutionField:
    """A new field: the base concentrations times lognormal noise per edge and horizon (a
    stand-in for the streaming pipeline's next estimate)."""
    rng = np.random.default_rng(seed)
    h = len(horizons_min)
    conc = {
        p: a[0][None, :] * rng.lognormal(0.0, 0.3, (h, net.n_edges))
        for p, a in base.concentration_ugm3.items()
    }
    return PollutionField.create(
        f"bench-{seed}",
        base.valid_at,
        conc,
        n_edges=net.n_edges,
        horizons_min=tuple(horizons_min),
    )


def constant_field(net: Network, base: PollutionField) -> PollutionField:
    """The base field repeated at every horizon (its time-dependent optimum is static)."""
    conc = {
        p: np.repeat(a[:1], len(HORIZONS_MIN), axis=0) for p, a in base.concentration_ugm3.items()
    }
    return PollutionField.create(
        "bench-constant", base.valid_at, conc, n_edges=net.n_edges, horizons_min=HORIZONS_MIN
    )


class TimeDependent:
    """The time-dependent kernel, called node to node with least-exposure weights."""

    def __init__(self, net: Network, fld: PollutionField) -> None:
        self.net = net
        self.conc = fld.concentration_ugm3[POLLUTANT]
        self.horizons_s = fld.horizons_s
        self.duration = np.asarray(net.edge_duration_s, dtype=np.float64)
        self.inhaled = np.asarray(net.edge_inhaled_m3, dtype=np.float64)
        self.static = np.zeros_like(self.duration)
        rev_indptr = np.asarray(net.rev_indptr)
        self.edge_into = np.asarray(net.rev_edge)[np.minimum(rev_indptr[:-1], net.n_edges - 1)]
        self.zero = np.zeros(1)

    def cost(self, s: int, t: int, depart_s: float) -> float:
        best, _i, _pred = kernels.time_dependent(
            self.net.indptr,
            self.net.edge_head,
            self.duration,
            self.inhaled,
            self.static,
            1.0,
            self.conc,
            self.horizons_s,
            depart_s,
            np.array([s], dtype=np.int64),
            self.zero,
            self.zero,
            np.array([t], dtype=np.int64),
            np.array([self.edge_into[t]], dtype=np.int64),
            self.zero,
        )
        return float(best)


def cch_query(router: Router, profile: str) -> Callable[[int, int, int], Any]:
    metric = router._state.metrics[preset_key(router, profile)]

    def run(_i: int, s: int, t: int) -> Any:
        return metric.query([Endpoint(s, 0.0, PIECE)], [Endpoint(t, 0.0, PIECE)])

    return run


def raw_cch(router: Router, profile: str, *, paths: bool) -> Callable[[int, int, int], Any]:
    """RoutingKit's own query through the binding, without airpath's wrapper."""
    raw = router._state.metrics[preset_key(router, profile)]._metric
    if not isinstance(raw, routingkit_cch.CCHMetric):  # large networks: pyroutingkit

        def run_large(_i: int, s: int, t: int) -> Any:
            dist, nodes, arcs = raw.query(s, t)
            return (dist, nodes, arcs) if paths else dist

        return run_large
    q = routingkit_cch.CCHQuery(raw)

    def run(_i: int, s: int, t: int) -> Any:
        res = q.run(s, t)
        out = (res.distance, res.node_path, res.arc_path) if paths else res.distance
        del res  # RoutingKit wants the result dropped before the next run
        return out

    return run


def float_cost(w: np.ndarray, arcs: Sequence[int]) -> float:
    return float(np.asarray(w)[np.asarray(arcs, dtype=np.int64)].sum()) if len(arcs) else 0.0


def verify_pairs(
    router: Router,
    pairs: Pairs,
    n: int,
    peer_costs: dict[str, dict[str, list[float]]],
    td_constant: TimeDependent,
) -> dict[str, Any]:
    """Cost of the first ``n`` pairs from every engine against the numba Dijkstra.

    Float engines (numba flexible, networkx, igraph, the time-dependent kernel on a
    field constant in time) must agree to ``REL_TOL``. The CCH runs on integer weights
    (float weight × scale, rounded down), so the float cost of the path it returns may
    exceed the optimum by at most (its edge count) / scale: within that it is counted
    as exact-to-rounding, beyond it is an error. Raises :class:`VerificationError`."""
    net = router.network
    out: dict[str, Any] = {"pairs": n, "checks": 0, "cch_beyond_1e-6": 0, "max_rel_dev": {}}
    for profile in PRESETS:
        key = preset_key(router, profile)
        w = router._state.weights[key]
        metric = router._state.metrics[key]
        worst: dict[str, float] = {}
        for i in range(n):
            s, t = int(pairs.src[i]), int(pairs.dst[i])
            ref, _ = flexible(net, w, [Endpoint(s, 0.0, PIECE)], [Endpoint(t, 0.0, PIECE)])
            dist, _nodes, arcs = metric.query([Endpoint(s, 0.0, PIECE)], [Endpoint(t, 0.0, PIECE)])
            if dist is None:
                raise VerificationError(f"{profile}: CCH finds no path {s}→{t}, Dijkstra {ref}")
            found = {"cch_path": float_cost(w, arcs)}
            for peer, costs in peer_costs.get(profile, {}).items():
                if i < len(costs):
                    found[peer] = costs[i]
            if profile == "least_exposure":
                found["time_dependent"] = td_constant.cost(s, t, 0.0)
            scale = max(abs(ref), 1e-300)
            for engine, c in found.items():
                dev = abs(c - ref) / scale
                worst[engine] = max(worst.get(engine, 0.0), dev)
                out["checks"] += 1
                if dev <= REL_TOL:
                    continue
                if engine == "cch_path" and 0 <= c - ref <= len(arcs) / metric.scale + 1e-12:
                    out["cch_beyond_1e-6"] += 1
                    continue
                raise VerificationError(
                    f"{profile}: {engine} costs {c!r} from node {s} to {t}, "
                    f"numba Dijkstra {ref!r} (relative difference {dev:.2e})"
                )
        out["max_rel_dev"][profile] = worst
    return out


def verify_routes(router: Router, pairs: Pairs, n: int) -> dict[str, Any]:
    """``Router.route()`` against the node-to-node optimum, for pairs whose points snap
    exactly onto the two nodes (others start inside an edge and cost something else).

    A point that snaps onto the end of a one-way segment is a junction, yet the router
    only lets a route leave (or reach) it along that segment; those requests are counted
    with their excess over the optimum, not raised. Any other difference is an error."""
    net = router.network
    lat, lon = node_latlon(net)
    out: dict[str, Any] = {"checked": 0, "skipped_not_on_node": 0, "one_way_end": {}}
    attr = {"shortest": "distance_m", "fastest": "duration_s", "least_exposure": "dose_ug"}
    for profile in PRESETS:
        key = preset_key(router, profile)
        w, metric = router._state.weights[key], router._state.metrics[key]
        worse: list[float] = []
        example = ""
        for i in range(n):
            s, t = int(pairs.src[i]), int(pairs.dst[i])
            try:
                res = router.route((lat[s], lon[s]), (lat[t], lon[t]), profile)
            except AirpathError:
                out["skipped_not_on_node"] += 1
                continue
            if max(res.meta["snap_distance_m"]) > 0.0 or _off_node(res, (lat, lon), s, t):
                out["skipped_not_on_node"] += 1
                continue
            ref, _ = flexible(net, w, [Endpoint(s, 0.0, PIECE)], [Endpoint(t, 0.0, PIECE)])
            got = float(getattr(res.best, attr[profile]))
            out["checked"] += 1
            if (
                ref - REL_TOL * ref
                <= got
                <= ref + REL_TOL * ref + len(res.best.legs) / metric.scale
            ):
                continue
            snaps = [router.snapper.snap(lat[x], lon[x]) for x in (s, t)]
            if got > ref and any(_one_way_end(sn) for sn in snaps):
                worse.append(got / ref - 1.0)
                example = example or (
                    f"nodes {s}→{t}: {attr[profile]} {got:.6g} vs {ref:.6g}; snapped onto "
                    + ", ".join(
                        f"segment {sn.segment} at fraction {sn.fraction:g} "
                        f"(edges {sn.edge_fwd}/{sn.edge_bwd})"
                        for sn in snaps
                    )
                )
                continue
            raise VerificationError(
                f"{profile}: Router.route() {attr[profile]} {got!r} from node {s} to {t}, "
                f"node-to-node optimum {ref!r}"
            )
        if worse:
            out["one_way_end"][profile] = {
                "count": len(worse),
                "median_excess": float(np.median(worse)),
                "max_excess": float(np.max(worse)),
                "example": example,
            }
    return out


def _one_way_end(sn: Any) -> bool:
    return (sn.edge_fwd < 0 or sn.edge_bwd < 0) and sn.fraction in (0.0, 1.0)


def _off_node(res: Any, latlon: tuple[np.ndarray, np.ndarray], s: int, t: int) -> bool:
    lat, lon = latlon
    (olat, olon), (dlat, dlon) = res.origin, res.destination
    return bool(
        abs(olat - lat[s]) + abs(olon - lon[s]) > 1e-9
        or abs(dlat - lat[t]) + abs(dlon - lon[t]) > 1e-9
    )


def depart_times(fld: PollutionField, n: int, seed: int) -> list[dt.datetime]:
    """Departures 0–20 min after the field's time, so routes span several horizons."""
    rng = np.random.default_rng(seed)
    return [fld.valid_at + dt.timedelta(seconds=float(x)) for x in rng.uniform(0, 1200, n)]
