"""BENCHMARKS.md from the stored results: the issue's targets with PASS/FAIL, then one
section per graph with the command that produced it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PRESETS = ("shortest", "fastest", "least_exposure")

# The targets (milliseconds, or ratios peer/ours).
PRESET_P50_MS = {"50k": 0.2, "1M": 5.0}
PRESET_P99_MS = {"50k": 2.0}
FLEXIBLE_P50_MS = 10.0
APPLY_FIELD_MS = 50.0
LIVE_FLEXIBLE_MS = 1000.0
LIVE_PRESET_MS = 3000.0
NETWORKX_RATIO = 200.0
IGRAPH_RATIO = 20.0

SERIES_LABELS = {
    "cch": ("CCH engine", "`CCHMetric.query`, node → node (path included)"),
    "rk_run": (
        "RoutingKit alone",
        "the binding's own query (`CCHQuery.run`; pyroutingkit `query` on large "
        "networks), distance only",
    ),
    "rk_paths": ("RoutingKit alone", "the binding's own query + node and arc path"),
    "route": (
        "`Router.route()`",
        "snap, solve, compare with shortest, then read every route's legs, steps and "
        "coordinates (what the API serves)",
    ),
    "route_totals": (
        "`Router.route()` totals",
        "the same call alone: legs, steps and coordinates are built on first read",
    ),
    "weights": ("per-request weights", "`profiles.weights` for a random α (whole network)"),
    "flexible": ("numba flexible", "`engines.flexible`, node → node, weights given"),
    "td_kernel": ("time-dependent kernel", "`kernels.time_dependent`, node → node"),
    "route_td": ("`Router.route(depart=…)`", "horizons 0/15/30/60 min, depart +0–20 min"),
    "networkx": (
        "networkx",
        "`bidirectional_dijkstra(G, s, t, weight=attr)`, osmnx's MultiDiGraph",
    ),
    "networkx_di": ("networkx", "`bidirectional_dijkstra`, DiGraph of the cheapest parallel edges"),
    "igraph": ("igraph", "`get_shortest_path(weights=attr, output='epath')`"),
}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("numpy", "numba", "routingkit-cch", "networkx", "igraph", "shapely"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def ms(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}" if x >= 0.01 else f"{x:.4f}"


def ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×"


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def checks(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, figure, target, ok) for the issue's targets that apply to this graph."""
    size = r.get("size_class")
    if "latency" not in r or size not in ("50k", "1M"):
        return []
    lat = r["latency"]
    out: list[tuple[str, str, str, bool]] = []
    for p in PRESETS:
        for key, label in (("cch", "CCH engine"), ("route", "Router.route()")):
            s = lat[f"{key}/{p}"]
            limit = PRESET_P50_MS[size]
            out.append(
                (f"{p}: {label} p50", ms(s["p50_ms"]), f"≤ {limit:g} ms", s["p50_ms"] <= limit)
            )
            if size in PRESET_P99_MS:
                limit = PRESET_P99_MS[size]
                out.append(
                    (f"{p}: {label} p99", ms(s["p99_ms"]), f"≤ {limit:g} ms", s["p99_ms"] <= limit)
                )
    if size == "50k":
        for key, label in (
            ("flexible/balanced", "flexible engine (balanced, random α)"),
            ("route/balanced", "Router.route() balanced, random α"),
            ("td_kernel/least_exposure", "time-dependent kernel"),
            ("route_td/least_exposure", "Router.route(depart=…)"),
        ):
            s = lat[key]
            out.append(
                (
                    f"{label} p50",
                    ms(s["p50_ms"]),
                    f"≤ {FLEXIBLE_P50_MS:g} ms",
                    s["p50_ms"] <= FLEXIBLE_P50_MS,
                )
            )
        s = r["fields"]["sync"]["apply_field"]
        out.append(
            (
                "apply_field (sync) p50",
                ms(s["p50_ms"]),
                f"≤ {APPLY_FIELD_MS:g} ms",
                s["p50_ms"] <= APPLY_FIELD_MS,
            )
        )
    else:
        runs = r["fields"]["background"]["runs"]
        flex = max(x["flexible_live_ms"] for x in runs)
        pres = [x["preset_live_ms"] for x in runs]
        worst = None if None in pres else max(pres)
        out.append(
            (
                "background: first flexible answer on new field (max)",
                ms(flex),
                f"≤ {LIVE_FLEXIBLE_MS:g} ms",
                flex <= LIVE_FLEXIBLE_MS,
            )
        )
        out.append(
            (
                "background: first preset answer on new field (max)",
                ms(worst) if worst is not None else "never",
                f"≤ {LIVE_PRESET_MS:g} ms",
                worst is not None and worst <= LIVE_PRESET_MS,
            )
        )
    # Judged on the same work: a peer's call and the CCH engine's both return a least-cost
    # path between two nodes. The full request's ratios are in each graph's peer table.
    for p in PRESETS:
        q = r["peers"]["ratios"][p]
        for peer, need in (("networkx", NETWORKX_RATIO), ("igraph", IGRAPH_RATIO)):
            x = q[f"{peer}_over_cch"]
            label = "networkx (osmnx's MultiDiGraph)" if peer == "networkx" else peer
            out.append((f"{p}: {label} / CCH engine (p50)", ratio(x), f"≥ {need:g}×", x >= need))
    return out


def render(graphs: dict[str, dict[str, Any]], machine: dict[str, Any], raw_dir: str) -> str:
    v = machine["versions"]
    lines = [
        "# Routing benchmarks",
        "",
        "Generated by `benchmarks/bench_routing.py`; do not edit by hand, rerun it. Each graph's",
        "section names the command that produced it (a run with `--graphs` updates only those",
        f"sections). Raw per-call latencies: `{raw_dir}/<graph>.json` (git-ignored).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"numpy {v['numpy']}, numba {v['numba']}, routingkit-cch {v['routingkit-cch']}, "
        f"networkx {v['networkx']}, igraph {v['igraph']}.",
        "",
        "How the figures are taken:",
        "",
        "- **Graphs are junction graphs.** Node and edge counts are after simplification:",
        "  nodes are junctions and dead ends, a directed edge is a street segment between two",
        "  of them in one allowed direction, largest strongly connected component only. The",
        '  issue\'s "50k-edge" graphs (counted as OSM node-to-node edges) are 5k–30k directed',
        "  edges here; the synthetic grid has no intermediate nodes and keeps its ~1M.",
        "- **Latency** is `time.perf_counter_ns` around one call, in one thread, nothing else",
        "  running, after 20 warm-up calls on other pairs (numba compiles on the first call);",
        "  the garbage collector stays on. p50 is the median, p99 the 99th percentile. Pairs",
        "  are random node pairs (seeded), the same pairs for every engine.",
        "- **Engine vs `Router.route()`.** The engine rows time a node-to-node query alone.",
        "  `Router.route()` is what a request costs: it snaps both points (to the node",
        "  coordinates here), solves, builds legs, coordinates and turn-by-turn steps, and for",
        "  any profile but `shortest` also solves the shortest route (totals only) to report",
        "  the comparison. A route builds its legs, steps and coordinates when they are first",
        "  read; the `Router.route()` rows read all three (the API serves the steps and the",
        "  coordinates), and the latency targets are judged on them. The legs, the per-edge",
        "  breakdown, are columns like OSRM's annotations: a NumPy array per quantity and a",
        "  list of street names, so reading them copies the route's table of pieces once and",
        "  makes no object per edge (the API makes lists of them only when a request asks",
        "  for annotations). The steps are columns of Python lists (the API serves them), the",
        "  coordinates a list of [lon, lat] lists. The `Router.route()` totals rows time the",
        "  call alone (what a caller that needs only distance, duration and dose pays).",
        "- **Peers** run on the same pairs with the same float weights; ratios are peer median",
        "  over ours, on the same pairs. On the grid the peers run on fewer pairs (stated).",
        "  networkx runs as osmnx-based routers run it: `bidirectional_dijkstra(G, s, t,",
        "  weight=attr)` on the `MultiDiGraph` osmnx builds, one edge per street segment,",
        "  parallel ones kept (green-routes-demo's call). For each edge it relaxes, networkx",
        "  then takes the least weight over the parallel edges, which roughly halves its",
        "  speed; the same call on a `DiGraph` that keeps only the cheapest parallel edge is",
        '  timed too and shown as "networkx DiGraph" in each graph\'s peer table. Earlier',
        "  reports timed and judged only that DiGraph variant.",
        "  The speed-up targets are judged on the same work: networkx's and igraph's calls",
        "  and the CCH engine row each return a least-cost path (and its cost) between two",
        "  nodes. A `Router.route()` request does much more (snapping, a second query for",
        "  the comparison with the shortest route, legs, steps, geometry) that the peers'",
        "  calls have no counterpart for; its ratios are shown in each graph's peer table,",
        "  not judged.",
        "- **Build memory** is the peak RSS of the build subprocess (`os.wait4` → `ru_maxrss`),",
        "  interpreter and imports included; the import-only baseline is shown beside it.",
        "",
        "## Targets",
        "",
        "| graph | what | figure | target | verdict |",
        "|---|---|---:|---:|---|",
    ]
    n_pass = n_fail = 0
    for r in graphs.values():
        for what, fig, target, ok in checks(r):
            lines.append(f"| {r['name']} | {what} | {fig} | {target} | {verdict(ok)} |")
            n_pass += ok
            n_fail += not ok
    lines += ["", f"{n_pass} pass, {n_fail} fail.", ""]
    lines += _findings(graphs)
    for r in graphs.values():
        lines += _section(r)
    return "\n".join(lines) + "\n"


def _section(r: dict[str, Any]) -> list[str]:
    out = [f"## {r['title']}", "", f"Command: `{r['command']}` (run {r['run_at']})", ""]
    if "skipped" in r:
        out += [f"Skipped — {r['skipped']}.", ""]
        out += [f"- {n}" for n in r.get("notes", [])]
        return [*out, ""] if r.get("notes") else out
    net, b, setup = r["network"], r["build"], r["setup"]
    built = "reused from an earlier run" if b.get("reused") else "built by this run"
    out += [
        f"- Network: {net['nodes']:,} nodes, {net['edges']:,} directed edges, "
        f"{net['segments']:,} segments; elevation {'yes' if net['elevation'] else 'no'}.",
        f"- Build ({built}, {b.get('built_at', '?')}): {b['build_s']:.1f} s in the builder, "
        f"{b['wall_s']:.1f} s wall for the subprocess; peak RSS {b['peak_rss_mib']:,.0f} MiB "
        f"(import-only baseline {b.get('import_baseline_mib', 0):,.0f} MiB).",
        f"- Setup: `load_network` {setup['load_network_s'] * 1000:.0f} ms, `Router()` "
        f"{setup['router_s'] * 1000:,.0f} ms (hierarchy + 5 customisations + snapping index).",
        f"- Pairs: {r['pairs']:,} (peers: {r['peer_pairs']:,}), seed {r['seed']}.",
        "",
        "| engine | profile | what is timed | n | p50 ms | p99 ms |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, s in r["latency"].items():
        kind, profile = name.split("/")
        label, what = SERIES_LABELS[kind]
        out.append(
            f"| {label} | {profile} | {what} | {s['n']:,} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} |"
        )
    for name, errs in r.get("errors", {}).items():
        out.append(f"\n{name}: calls that raised (left out): {errs}")
    peers = r["peers"]
    out += [
        "",
        f"Peers on {r['peer_pairs']:,} pairs (graph conversion: networkx "
        f"{peers['networkx_build_s']:.1f} s, igraph {peers['igraph_build_s']:.1f} s). networkx "
        "runs on osmnx's MultiDiGraph; the DiGraph column is the same call on a DiGraph of "
        "the cheapest parallel edges:",
        "",
        "| profile | CCH engine p50 | route() p50 | networkx p50 | networkx DiGraph p50 "
        "| igraph p50 | networkx / CCH | networkx DiGraph / CCH | igraph / CCH "
        "| networkx / route() | igraph / route() |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p, q in peers["ratios"].items():
        di_ms = q.get("networkx_di_p50_ms")
        out.append(
            f"| {p} | {ms(q['cch_p50_ms'])} | {ms(q['route_p50_ms'])} | "
            f"{ms(q['networkx_p50_ms'])} | {ms(di_ms) if di_ms else '—'} | "
            f"{ms(q['igraph_p50_ms'])} | {ratio(q['networkx_over_cch'])} | "
            f"{ratio(q['networkx_di_over_cch']) if di_ms else '—'} | "
            f"{ratio(q['igraph_over_cch'])} | "
            f"{ratio(q['networkx_over_route'])} | {ratio(q['igraph_over_route'])} |"
        )
    ver = r["verification"]
    devs = "; ".join(
        f"{p}: " + ", ".join(f"{e} {d:.1e}" for e, d in w.items())
        for p, w in ver["max_rel_dev"].items()
    )
    out += [
        "",
        f"Cost cross-check on {ver['pairs']:,} pairs: {ver['checks']:,} comparisons against the "
        "numba Dijkstra, all within 1e-6 relative"
        + (
            f" except {ver['cch_beyond_1e-6']} CCH paths within the integer-weight rounding bound"
            if ver["cch_beyond_1e-6"]
            else ""
        )
        + f". Largest relative differences — {devs}.",
        "",
    ]
    rv = ver["route"]
    bad = rv["one_way_end"]
    n_bad = sum(x["count"] for x in bad.values())
    out += [
        f"`Router.route()` against the node-to-node optimum, on the {rv['checked']:,} requests "
        f"whose points snap exactly onto the nodes ({rv['skipped_not_on_node']:,} others start "
        f"inside an edge): {rv['checked'] - n_bad:,} equal"
        + (
            f"; {n_bad:,} longer because a point snapped onto the end of a one-way segment "
            "(the junction itself) and the router only let the route leave or reach it along "
            "that segment: "
            + "; ".join(
                f"{p} {x['count']} requests, median +{x['median_excess'] * 100:.1f} %, "
                f"max +{x['max_excess'] * 100:.0f} %"
                for p, x in bad.items()
            )
            + f". Example: {next(iter(bad.values()))['example']}."
            if bad
            else "."
        ),
        "",
    ]
    out += _fields(r)
    wc = r["weight_cache"]
    if wc["vectors_added"]:
        out += [
            f"- Per-request weights are cached for good: {wc['requests']} `balanced` requests "
            f"with distinct α left {wc['vectors_added']} weight vectors "
            f"({wc['bytes_each'] / 2**20:.1f} MiB each) in the router (the benchmark drops "
            "them after each call).",
        ]
    out += [f"- {n}" for n in r.get("notes", [])]
    return [*out, ""]


def _fields(r: dict[str, Any]) -> list[str]:
    sync, bg = r["fields"]["sync"], r["fields"]["background"]
    out = [
        f"New pollution field (3 pollutants), synchronous, {sync['repeats']} repeats:",
        "",
        "| step | p50 ms | max ms |",
        "|---|---:|---:|",
        f"| `PollutionField.create` (validate, copy) | {ms(sync['create_field']['p50_ms'])} "
        f"| {ms(sync['create_field']['max_ms'])} |",
        f"| `Router.apply_field(field)` | {ms(sync['apply_field']['p50_ms'])} "
        f"| {ms(sync['apply_field']['max_ms'])} |",
        f"| … of which weights (`_new_state`) | {ms(sync['weights']['p50_ms'])} "
        f"| {ms(sync['weights']['max_ms'])} |",
    ]
    for key, s in sync["customise"].items():
        out.append(f"| … of which customising `{key}` | {ms(s['p50_ms'])} | {ms(s['max_ms'])} |")
    runs = bg["runs"]
    out += [
        "",
        f"Background (`apply_field(field, background=True)`), {bg['repeats']} repeats, "
        "times from the start of the call:",
        "",
        "| run | call returns (flexible weights published) | first flexible answer on the "
        "new field | first preset answer on the new field | slowest flexible query "
        "meanwhile | slowest preset query meanwhile |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k, x in enumerate(runs):
        out.append(
            f"| {k + 1} | {ms(x['published_ms'])} | {ms(x['flexible_live_ms'])} | "
            f"{ms(x['preset_live_ms'])} | {ms(x['flexible_probe_max_ms'] or None)} | "
            f"{ms(x['preset_probe_max_ms'])} |"
        )
    if bg["worker_errors"]:
        out.append(f"\nThe customisation thread failed: {bg['worker_errors']}")
    return [*out, ""]


def _findings(graphs: dict[str, dict[str, Any]]) -> list[str]:
    """Product issues the figures show, each with the numbers behind it."""
    done = [r for r in graphs.values() if "latency" in r]
    out: list[str] = []
    for r in done:
        runs = r["fields"]["background"]["runs"]
        stall = max(
            max(x["flexible_live_ms"] - x["published_ms"], x["flexible_probe_max_ms"]) for x in runs
        )
        alone = r["latency"]["route/balanced"]["p50_ms"]
        if stall > max(10 * alone, 50.0):
            out.append(
                f"- {r['name']}: while a background customisation runs (after "
                f"`apply_field(..., background=True)` has published the new weights in "
                f"{ms(runs[0]['published_ms'])} ms) single requests stall for up to "
                f"{ms(stall)} ms (flexible) and "
                f"{ms(max(x['preset_probe_max_ms'] for x in runs))} ms (preset) instead of "
                f"~{ms(alone)} ms: the CCH customisation on the worker thread holds the "
                "interpreter lock, so no query of any kind runs until it ends."
            )
    detours = {
        r["name"]: sum(x["count"] for x in r["verification"]["route"]["one_way_end"].values())
        for r in done
    }
    if any(detours.values()):
        out.append(
            "- Snapping onto the end of a one-way segment forces a detour ("
            + ", ".join(f"{name}: {n} requests" for name, n in detours.items() if n)
            + "; details in the graph sections)."
        )
    leak = [r for r in done if r["weight_cache"]["vectors_added"]]
    if leak:
        out.append(
            "- Each `balanced` request with a new α leaves its weight vector cached in the "
            "router for good ("
            + ", ".join(
                f"{r['name']}: {r['weight_cache']['bytes_each'] / 2**20:.1f} MiB each" for r in leak
            )
            + ")."
        )
    return ["## Product issues these figures show", "", *out, ""] if out else []


OTHER_BEGIN = "<!-- other benchmarks: kept when the routing report is regenerated -->"


def keep_other_sections(report_path: Path) -> str:
    """The part of an existing BENCHMARKS.md written by other benchmark programs
    (from :data:`OTHER_BEGIN` on), so regenerating the routing report keeps it."""
    if not report_path.exists():
        return ""
    text = report_path.read_text()
    at = text.find(OTHER_BEGIN)
    return "\n" + text[at:] if at >= 0 else ""
