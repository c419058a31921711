"""API load benchmark: ``GET /v1/route`` over HTTP at fixed concurrency, while new
pollution fields are published mid-load.

    .venv/bin/python benchmarks/bench_api.py [--quick] [--network DIR] [--client raw] [--report]

Serves the Barcelona network (built once from ``../shared/data/bcn`` into
``benchmarks/out/networks/barcelona``, or ``--network DIR``) with ``python -m airpath.api
serve`` under uvicorn in a subprocess (``--workers``, default one per core), its field
store a local directory that this process publishes a new snapshot to every
``--publish-every`` seconds throughout. An async httpx client (or, with ``--client raw``,
a bare keep-alive HTTP/1.1 client that needs far less CPU) keeps ``--concurrency``
requests in flight for ``--duration`` seconds per preset profile, on random node pairs
(seeded). Latency is client-side, from sending a request to having its whole body.

Figures: routes/s (answers 200 per wall second), p50/p99/max latency, errors (any
non-200 answer or transport failure: none are allowed, the exit status is 1 then), the
field versions seen, and the CPU seconds the server processes and this load generator
used (they share the machine's cores). ``--report`` writes this benchmark's section of
``BENCHMARKS.md`` (among the other benchmarks, which the routing report keeps);
``--quick`` runs short phases and never writes the report.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from _report import OTHER_BEGIN, keep_other_sections, machine_info
from airpath import PollutionField
from airpath.errors import NetworkFormatError
from airpath.network.sources import build_from_sources
from airpath.network.store import load_network
from airpath.serving import FieldSnapshot, LocalFieldStore, network_key

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "benchmarks" / "out"
BEGIN = "<!-- api:begin -->"
END = "<!-- api:end -->"
PRESETS = ("shortest", "fastest", "least_exposure")
TARGET_ROUTES_PER_S = 500.0
TARGET_P99_MS = 50.0
_CLIENTS = {
    "httpx": "`httpx.AsyncClient`",
    "raw": "bare keep-alive HTTP/1.1 client (`--client raw`)",
}
_VERSION = re.compile(rb'"field":\{"version":"([^"]*)"')
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def log(msg: str) -> None:
    print(msg, flush=True)


# -- the network and the fields ---------------------------------------------------------------


def network_dir(args: argparse.Namespace) -> Path | None:
    """The network to serve: ``--network``, or Barcelona (built once, then reused)."""
    if args.network:
        return Path(args.network)
    net = OUT / "networks" / "barcelona"
    try:
        load_network(net)
        return net
    except NetworkFormatError:
        pass
    if not (DATA / "bcn").is_dir():
        return None

    log(f"building the Barcelona network into {net}")
    build_from_sources([str(DATA / "bcn")], net)
    return net


class Publisher:
    """Publishes a perturbed copy of the network's priors as a new snapshot every
    ``every_s`` seconds, on a thread, until stopped."""

    def __init__(self, net_dir: Path, store_dir: Path, every_s: float, seed: int) -> None:

        self.network = load_network(net_dir)
        self.key = network_key(self.network)
        self.store = LocalFieldStore(store_dir, keep=3)
        self.every_s = every_s
        self.rng = np.random.default_rng(seed)
        self.published: list[tuple[str, float]] = []  # (version, seconds to publish)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def publish(self) -> str:

        t0 = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        prior = np.asarray(self.network.edge_prior_ugm3, dtype=np.float64)
        n = self.network.n_edges
        conc = {
            p: prior[k] * self.rng.uniform(0.7, 1.3, size=(4, n))
            for k, p in enumerate(self.network.pollutants)
        }
        version = f"bench-{len(self.published) + 1:04d}"
        fld = PollutionField.create(version, now, conc, n_edges=n, horizons_min=(0, 15, 30, 60))
        self.store.publish(FieldSnapshot(fld, self.key, "bench", now, now))
        self.published.append((version, time.perf_counter() - t0))
        return version

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.publish()


# -- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(net: Path, store: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "airpath.api", "serve", "--network", str(net),
        "--field-store", str(store), "--port", str(port), "--workers", str(workers),
        "--max-field-age", "0", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd)
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready after {timeout_s} s")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children, from /proc (0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        this, parent = int(stat.parent.name), int(fields[1])
        if pid in (this, parent):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# -- the load ------------------------------------------------------------------------------


def od_pairs(net_dir: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` random node pairs as ``lat,lon`` texts (distinct nodes, seeded)."""
    net = load_network(net_dir)
    lat, lon = np.asarray(net.node_lat), np.asarray(net.node_lon)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(lat), n), rng.integers(0, len(lat), n)
    keep = a != b
    return [
        (f"{lat[i]:.7f},{lon[i]:.7f}", f"{lat[j]:.7f},{lon[j]:.7f}")
        for i, j in zip(a[keep], b[keep], strict=True)
    ]


class RawConnection:
    """A bare HTTP/1.1 keep-alive GET client on asyncio streams, for ``--client raw``: a
    tenth of httpx's CPU per request, so the load generator takes less of the cores it
    shares with the server. Enough for uvicorn's answers (always with Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(head)
            if length is None:
                raise ConnectionError("answer without Content-Length")
            return int(head[9:12]), await reader.readexactly(int(length.group(1)))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await self.close()
            raise

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def run_phase(
    base: str, urls: list[str], duration_s: float, concurrency: int, client_kind: str = "httpx"
) -> dict[str, Any]:
    """Keep ``concurrency`` requests in flight for ``duration_s``; latencies in ms."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    host, port = base.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:
        deadline = time.perf_counter() + duration_s

        async def get_httpx(url: str) -> tuple[int, bytes]:
            r = await client.get(url)
            return r.status_code, r.content

        async def worker(k: int) -> None:
            raw = RawConnection(host, int(port))
            get = raw.get if client_kind == "raw" else get_httpx
            i = k
            while time.perf_counter() < deadline:
                url = urls[i % len(urls)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    status, body = await get(url)
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if status != 200:
                    errors[f"{status} {body[:160]!r}"] += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000.0)
                m = _VERSION.search(body, max(len(body) - 600, 0))
                versions[m.group(1).decode() if m else "?"] += 1
            await raw.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies)
    return {
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies),
        "elapsed_s": elapsed,
        "routes_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
        "max_ms": float(lat.max()) if len(lat) else None,
        "errors": dict(errors),
        "field_versions": len(versions),
    }


def bench(args: argparse.Namespace, net: Path) -> dict[str, Any]:

    network = load_network(net)
    pairs = od_pairs(net, 2000, args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    publisher = Publisher(net, work / "fields", args.publish_every, args.seed)
    publisher.publish()  # the server starts on a live field
    proc, base = start_server(net, work / "fields", args.workers)
    phases: dict[str, Any] = {}
    try:
        wait_ready(base, proc)
        log(f"  server ready at {base} ({args.workers} workers)")
        warm = [f"/v1/route?from={o}&to={d}&profile={p}" for p in PRESETS for o, d in pairs[:50]]
        asyncio.run(run_phase(base, warm, args.warmup, args.concurrency, args.client))
        publisher.start()
        for profile in PRESETS:
            urls = [f"/v1/route?from={o}&to={d}&profile={profile}" for o, d in pairs]
            server0, client0 = tree_cpu_s(proc.pid), time.thread_time()
            phase = asyncio.run(run_phase(base, urls, args.duration, args.concurrency, args.client))
            phase["server_cpu_s"] = tree_cpu_s(proc.pid) - server0
            phase["client_cpu_s"] = time.thread_time() - client0  # the loop, not the publisher
            phases[profile] = phase
            log(f"  {profile}: {_line(phase)}")
    finally:
        publisher.stop()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    publish_s = [s for _, s in publisher.published]
    return {
        "network": {"path": str(net), "nodes": network.n_nodes, "edges": network.n_edges},
        "workers": args.workers,
        "concurrency": args.concurrency,
        "client": args.client,
        "duration_s": args.duration,
        "publish_every_s": args.publish_every,
        "fields_published": len(publisher.published),
        "publish_p50_ms": float(np.median(publish_s)) * 1000.0,
        "phases": phases,
        "machine": machine_info(),
        "command": shlex.join([".venv/bin/python", "benchmarks/bench_api.py", *sys.argv[1:]]),
        "run_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# -- the report ----------------------------------------------------------------------------


def _line(p: dict[str, Any]) -> str:
    errors = sum(p["errors"].values())
    return (
        f"{p['routes_per_s']:.0f} routes/s, p50 {_ms(p['p50_ms'])} ms, p99 {_ms(p['p99_ms'])} "
        f"ms, max {_ms(p['max_ms'])} ms, {errors} errors, {p['field_versions']} field "
        f"versions seen; CPU s: server {p['server_cpu_s']:.1f}, load generator "
        f"{p['client_cpu_s']:.1f}"
    )


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    out = []
    for profile, p in r["phases"].items():
        out.append((f"{profile}: routes/s", f"{p['routes_per_s']:.0f}", "≥ 500",
                    p["routes_per_s"] >= TARGET_ROUTES_PER_S))  # fmt: skip
        p99 = p["p99_ms"]
        out.append((f"{profile}: p99", f"{_ms(p99)} ms", "≤ 50 ms",
                    p99 is not None and p99 <= TARGET_P99_MS))  # fmt: skip
        errors = sum(p["errors"].values())
        out.append((f"{profile}: errors while fields change", str(errors), "0", errors == 0))
    return out


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        BEGIN,
        "",
        "# API load benchmark",
        "",
        f"Command: `{r['command']}` (run {r['run_at']}). Generated by `benchmarks/bench_api.py`.",
        "",
        f"`GET /v1/route` on {r['network']['edges']:,} edges ({r['network']['nodes']:,} nodes), "
        f"uvicorn with {r['workers']} worker processes, {r['concurrency']} requests in flight "
        f"from one async {_CLIENTS[r['client']]}, {r['duration_s']:g} s per profile; a new field "
        f"published every {r['publish_every_s']:g} s ({r['fields_published']} in all, "
        f"{r['publish_p50_ms']:.0f} ms each to publish). Machine: {m['cpu']}, {m['cores']} "
        "cores, shared by the server and the load generator (CPU seconds below).",
        "",
        "| profile | routes/s | p50 ms | p99 ms | max ms | errors | fields seen "
        "| server CPU s | client CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for profile, p in r["phases"].items():
        lines.append(
            f"| {profile} | {p['routes_per_s']:.0f} | {_ms(p['p50_ms'])} | {_ms(p['p99_ms'])} "
            f"| {_ms(p['max_ms'])} | {sum(p['errors'].values())} | {p['field_versions']} "
            f"| {p['server_cpu_s']:.1f} | {p['client_cpu_s']:.1f} |"
        )
    lines += ["", "| target | figure | limit | verdict |", "|---|---:|---:|---|"]
    for what, fig, limit, ok in verdicts(r):
        lines.append(f"| {what} | {fig} | {limit} | {'**PASS**' if ok else '**FAIL**'} |")
    return "\n".join([*lines, "", END, ""])


def write_section(section: str) -> Path:
    """Put ``section`` among the other benchmarks' sections of BENCHMARKS.md (the part
    :func:`keep_other_sections` keeps when the routing report is regenerated)."""
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    other = keep_other_sections(path).lstrip("\n") or OTHER_BEGIN + "\n"
    head = text[: text.find(OTHER_BEGIN)] if OTHER_BEGIN in text else text
    if BEGIN in other and END in other:
        other = other[: other.index(BEGIN)] + section + other[other.index(END) + len(END) + 1 :]
    else:
        other = other.rstrip("\n") + "\n\n" + section
    path.write_text(head.rstrip("\n") + "\n\n" + other)
    return path


# -- the command ---------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short phases; never writes the report")
    ap.add_argument("--network", help="network directory (default: Barcelona)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    ap.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="load generator: httpx.AsyncClient, or a bare keep-alive HTTP/1.1 client",
    )
    ap.add_argument("--duration", type=float, default=None, help="seconds per profile (20)")
    ap.add_argument("--publish-every", type=float, default=1.0, help="seconds between fields")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--report", action="store_true", help="write the section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.duration is None:
        args.duration = 4.0 if args.quick else 20.0
    args.warmup = 1.0 if args.quick else 3.0
    if args.quick and args.report:
        ap.error("--quick figures are not written to BENCHMARKS.md")
    return args


def main() -> int:
    args = parse(sys.argv[1:])
    net = network_dir(args)
    if net is None:
        log(f"bench_api: skipped: the Barcelona data is absent ({DATA / 'bcn'}); use --network")
        return 0
    log(f"API load benchmark on {net}")
    result = bench(args, net)
    OUT.mkdir(parents=True, exist_ok=True)
    stored = OUT / f"bench_api{'-quick' if args.quick else ''}.json"
    stored.write_text(json.dumps(result, indent=1))
    for what, fig, limit, ok in verdicts(result):
        log(f"  {'PASS' if ok else 'FAIL'}  {what}: {fig} (target {limit})")
    if args.report:
        log(f"wrote {write_section(render(result))}")
    log(f"raw results in {stored}")
    errors = sum(sum(p["errors"].values()) for p in result["phases"].values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
