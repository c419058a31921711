"""Routing benchmark: latency of every engine and profile, peers on the same pairs, and
the time a new pollution field takes to go live.

    .venv/bin/python benchmarks/bench_routing.py [--pairs 1000] [--graphs a,b] [--quick]

Builds each graph once into ``benchmarks/out/networks/`` (in a subprocess, for its peak
memory), then, per graph, in this one process and one thread: preset profiles on the CCH
(engine and ``Router.route()``), per-request costs on the numba engine, time-dependent
least exposure, networkx and igraph on the same pairs and weights, a cross-check of all
engines' costs, and field application. Writes ``BENCHMARKS.md`` (merging the graphs of
earlier runs, each with the command that produced it) and the raw numbers under
``benchmarks/out/``. ``--quick`` runs small graphs with few pairs and writes its report
under ``benchmarks/out/`` instead, so it never replaces the full one.

Exit status: 0 when the report is written (targets may FAIL: that is a finding), 1 with
one line on stderr on an error, including engines disagreeing about a cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from _fields import apply_background, apply_sync, drop_request_weights
from _measure import (
    HORIZONS_MIN,
    PIECE,
    PRESETS,
    Pairs,
    Series,
    TimeDependent,
    VerificationError,
    balanced_weights,
    cch_query,
    constant_field,
    float_cost,
    make_pairs,
    node_latlon,
    perturbed_field,
    preset_key,
    raw_cch,
    verify_pairs,
    verify_routes,
)
from _networks import REPO, BuiltGraph, build_graph, graph_specs, import_baseline_mib
from _peers import igraph_graph, igraph_query, networkx_graph, networkx_query
from _report import keep_other_sections, machine_info, render
from airpath import Router, load_network
from airpath.routing.engines import Endpoint, flexible

OUT = REPO / "benchmarks" / "out"
ALL_GRAPHS = ("liechtenstein", "andorra", "barcelona", "helsinki", "grid")
QUICK_GRAPHS = ("helsinki", "liechtenstein")
RESULT_SCHEMA = 2  # bump when the stored per-graph results change shape
BIG_EDGES = 500_000  # graphs at least this big get fewer peer pairs and field repeats


def log(msg: str) -> None:
    print(msg, flush=True)


def _built(result: Any) -> Any:
    """``result`` with every route's legs, steps and coordinates built (they are built on
    first read), so that a timing covers what a served request costs."""
    for r in result.routes:
        _ = r.legs, r.steps, r.coordinates
    return result


def bench_graph(g: BuiltGraph, args: argparse.Namespace) -> tuple[dict[str, Any], Series]:
    assert g.path is not None
    t0 = time.perf_counter()
    net = load_network(g.path)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    router = Router(net)
    router_s = time.perf_counter() - t0
    big = net.n_edges >= BIG_EDGES
    n_peer = min(args.pairs, args.peer_pairs_big if big else args.pairs)
    pairs = make_pairs(net.n_nodes, args.pairs, args.seed)
    lat, lon = node_latlon(net)
    prior = router.field
    series = Series()
    log(f"  {net.n_nodes:,} nodes, {net.n_edges:,} edges; {len(pairs)} pairs")

    def route(profile: str, **kw: Any) -> Callable[[int, int, int], Any]:
        """A whole request: the result with every route's detail built, as served."""

        def run(_i: int, s: int, t: int) -> Any:
            result = router.route((lat[s], lon[s]), (lat[t], lon[t]), profile, **kw)
            return _built(result)

        return run

    def totals(profile: str) -> Callable[[int, int, int], Any]:
        return lambda _i, s, t: router.route((lat[s], lon[s]), (lat[t], lon[t]), profile)

    log("  (a) preset profiles: CCH engine, RoutingKit alone, Router.route()")
    for profile in PRESETS:
        series.time(f"cch/{profile}", cch_query(router, profile), pairs)
    series.time("rk_run/least_exposure", raw_cch(router, "least_exposure", paths=False), pairs)
    series.time("rk_paths/least_exposure", raw_cch(router, "least_exposure", paths=True), pairs)
    for profile in PRESETS:
        series.time(f"route/{profile}", route(profile), pairs)
    for profile in PRESETS:
        series.time(f"route_totals/{profile}", totals(profile), pairs)

    log("  (b) per-request cost (balanced, random α) and time-dependent least exposure")
    rng = np.random.default_rng(args.seed + 1)
    alphas = rng.uniform(0.05, 0.95, len(pairs) + len(pairs.warm_src))
    held: dict[str, np.ndarray] = {}

    def prepare(i: int) -> None:
        held["w"] = balanced_weights(net, prior, float(alphas[i]))

    def flex(_i: int, s: int, t: int) -> Any:
        return flexible(net, held["w"], [Endpoint(s, 0.0, PIECE)], [Endpoint(t, 0.0, PIECE)])

    series.time("weights/balanced", lambda i, _s, _t: prepare(i), pairs)
    series.time("flexible/balanced", flex, pairs, prepare=prepare)
    before = set(router._latest.weights)
    series.time(
        "route/balanced",
        lambda i, s, t: _built(
            router.route((lat[s], lon[s]), (lat[t], lon[t]), "balanced", balance=float(alphas[i]))
        ),
        pairs,
        untimed=lambda _i: drop_request_weights(router, before),
    )
    leak = _weight_cache_growth(router, net.n_edges, lat, lon, pairs)

    log(f"  (c) peers on {n_peer} pairs: networkx (MultiDiGraph, DiGraph), igraph")
    peers, peer_costs = _peers(router, series, pairs, n_peer)

    log("  verifying costs across engines")
    verification = verify_pairs(
        router, pairs, n_peer, peer_costs, TimeDependent(net, constant_field(net, prior))
    )
    verification["route"] = verify_routes(router, pairs, min(n_peer, 200))

    td_field = perturbed_field(net, prior, args.seed + 2, HORIZONS_MIN)
    router.apply_field(td_field)
    td = TimeDependent(net, td_field)
    offsets = rng.uniform(0.0, 1200.0, len(alphas))
    series.time("td_kernel/least_exposure", lambda i, s, t: td.cost(s, t, offsets[i]), pairs)
    series.time(
        "route_td/least_exposure",
        lambda i, s, t: _built(
            router.route(
                (lat[s], lon[s]),
                (lat[t], lon[t]),
                "least_exposure",
                depart=td_field.valid_at + dt.timedelta(seconds=float(offsets[i])),
            )
        ),
        pairs,
    )
    router.apply_field(prior)

    log("  (d) applying a new field: synchronous, then in the background")
    o, d = int(pairs.src[0]), int(pairs.dst[0])
    fields = {
        "sync": apply_sync(
            router, prior, args.field_repeats_big if big else args.field_repeats, 10
        ),
        "background": apply_background(
            router,
            prior,
            max(2, (args.field_repeats_big if big else args.field_repeats) // 2),
            1000,
            (lat[o], lon[o]),
            (lat[d], lon[d]),
        ),
    }
    series.raw["apply_field_sync"] = fields["sync"].pop("raw_apply_ns")

    result = {
        "schema": RESULT_SCHEMA,
        "name": g.spec.name,
        "title": g.spec.title,
        "size_class": g.spec.size_class,
        "command": shlex.join(sys.orig_argv),
        "run_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "pairs": len(pairs),
        "peer_pairs": n_peer,
        "seed": args.seed,
        "network": {
            "nodes": net.n_nodes,
            "edges": net.n_edges,
            "segments": int(net.manifest["counts"]["segments"]),
            "elevation": bool(net.manifest.get("elevation")),
            "hop_bound": int(net.manifest["hop_bound"]),
        },
        "build": g.build,
        "setup": {"load_network_s": load_s, "router_s": router_s},
        "latency": {name: series.stats(name) for name in series.raw if "/" in name},
        "errors": series.errors,
        "peers": peers,
        "verification": verification,
        "fields": fields,
        "weight_cache": leak,
        "notes": g.notes,
    }
    return result, series


def _peers(
    router: Router, series: Series, pairs: Pairs, n: int
) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    weights = {p: router._state.weights[preset_key(router, p)] for p in PRESETS}
    costs: dict[str, dict[str, list[float]]] = {p: {} for p in PRESETS}
    build_s: dict[str, float] = {}
    # The peers one at a time: on the grid each networkx graph holds a million edges.
    for peer, make, query in (
        ("networkx", lambda: networkx_graph(router.network, weights), networkx_query),
        (
            "networkx_di",
            lambda: networkx_graph(router.network, weights, multi=False),
            networkx_query,
        ),
        ("igraph", lambda: igraph_graph(router.network, weights), igraph_query),
    ):
        graph, build_s[peer] = make()
        for p in PRESETS:
            sink: dict[int, Any] = {}
            series.time(f"{peer}/{p}", query(graph, p, sink), pairs, limit=n)
            costs[p][peer] = [
                float_cost(weights[p], sink[i]) if peer == "igraph" else float(sink[i])
                for i in range(n)
            ]
        del graph
    ratios: dict[str, dict[str, float]] = {}
    for p in PRESETS:
        ours = series.stats(f"cch/{p}", n)["p50_ms"]
        full = series.stats(f"route/{p}", n)["p50_ms"]
        ratios[p] = {"cch_p50_ms": ours, "route_p50_ms": full}
        for peer in ("networkx", "networkx_di", "igraph"):
            peer_ms = series.stats(f"{peer}/{p}")["p50_ms"]
            ratios[p][f"{peer}_p50_ms"] = peer_ms
            ratios[p][f"{peer}_over_cch"] = peer_ms / ours
            ratios[p][f"{peer}_over_route"] = peer_ms / full
    return {f"{peer}_build_s": v for peer, v in build_s.items()} | {"ratios": ratios}, costs


def _weight_cache_growth(
    router: Router, n_edges: int, lat: np.ndarray, lon: np.ndarray, pairs: Pairs
) -> dict[str, Any]:
    """How many weight vectors the router keeps after requests with distinct α."""
    before = set(router._latest.weights)
    s, t = int(pairs.src[0]), int(pairs.dst[0])
    k = 5
    for j in range(k):
        router.route((lat[s], lon[s]), (lat[t], lon[t]), "balanced", balance=0.11 + j / 100)
    grown = len(set(router._latest.weights) - before)
    drop_request_weights(router, before)
    return {"requests": k, "vectors_added": grown, "bytes_each": n_edges * 8}


class UsageError(Exception):
    """A bad command line (reported in one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = _Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=None, help="OD pairs per graph (1000)")
    ap.add_argument("--graphs", default=None, help=f"comma list of {', '.join(ALL_GRAPHS)}")
    ap.add_argument("--quick", action="store_true", help="small graphs, few pairs")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--peer-pairs-big", type=int, default=100, help="peer pairs on the grid")
    ap.add_argument("--rebuild", action="store_true", help="rebuild networks even if present")
    args = ap.parse_args(argv)
    default_graphs = QUICK_GRAPHS if args.quick else ALL_GRAPHS
    args.graphs = tuple(args.graphs.split(",")) if args.graphs else default_graphs
    unknown = set(args.graphs) - set(ALL_GRAPHS)
    if unknown:
        ap.error(f"unknown graph(s) {', '.join(sorted(unknown))}; choose from {ALL_GRAPHS}")
    if args.pairs is None:
        args.pairs = 50 if args.quick else 1000
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    args.field_repeats = 5 if args.quick else 20
    args.field_repeats_big = 5
    return args


def run(argv: list[str]) -> int:
    args = _parse(argv)
    tag = "-quick" if args.quick else ""
    raw_dir = OUT / f"raw{tag}"
    results_path = OUT / f"bench_routing{tag}.json"
    report_path = OUT / "BENCHMARKS-quick.md" if args.quick else REPO / "BENCHMARKS.md"
    raw_dir.mkdir(parents=True, exist_ok=True)
    specs = graph_specs()
    stored: dict[str, Any] = {}
    if results_path.exists():
        for name, r in json.loads(results_path.read_text()).get("graphs", {}).items():
            if r.get("schema") == RESULT_SCHEMA:
                stored[name] = r
            else:
                log(f"{name}: dropping stored results of an older benchmark version")
    baseline = import_baseline_mib()
    for name in args.graphs:
        spec = specs[name]
        if args.quick and spec.grid_side:
            log(f"{name}: skipped (--quick runs small graphs only)")
            continue
        log(f"{spec.title}")
        built = build_graph(spec, OUT / "networks", rebuild=args.rebuild, log=log)
        if built.path is None:
            log(f"  skipped: {built.skipped}")
            stored[name] = {
                "schema": RESULT_SCHEMA,
                "name": name,
                "title": spec.title,
                "size_class": spec.size_class,
                "skipped": built.skipped,
                "notes": built.notes,
                "command": shlex.join(sys.orig_argv),
                "run_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            }
            continue
        built.build["import_baseline_mib"] = baseline
        result, series = bench_graph(built, args)
        stored[name] = result
        (raw_dir / f"{name}.json").write_text(json.dumps(series.raw))
        results_path.write_text(json.dumps({"graphs": stored}, indent=1))
    ordered = {k: stored[k] for k in ALL_GRAPHS if k in stored}
    results_path.write_text(json.dumps({"machine": machine_info(), "graphs": ordered}, indent=1))
    text = render(ordered, machine_info(), str(raw_dir.relative_to(REPO)))
    report_path.write_text(text + keep_other_sections(report_path))
    print(text)
    log(f"wrote {report_path} and {results_path} (raw latencies in {raw_dir})")
    return 0


def main() -> int:
    try:
        return run(sys.argv[1:])
    except KeyboardInterrupt:
        print("bench_routing: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"bench_routing: usage: {exc} (see --help)", file=sys.stderr)
        return 2
    except VerificationError as exc:
        print(f"bench_routing: engines disagree: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("BENCH_DEBUG"):
            raise
        print(f"bench_routing: error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
