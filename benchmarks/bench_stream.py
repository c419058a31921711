"""The streaming pipeline on local[2]: sustained throughput, end-to-end freshness, and how
fast a 1M-edge field goes live in a subscribed router.

    .venv/bin/python benchmarks/bench_stream.py            # all three, writes BENCHMARKS.md
    .venv/bin/python benchmarks/bench_stream.py --quick    # short runs, no report

1. **Throughput.** A writer lands one JSON-lines file per second holding ``rate``
   readings from a fixed fleet (reference, low-cost and mobile sensors on the Barcelona
   network, three pollutants each), times stamped as written; the job runs with a 1 s
   trigger. A rate is *sustained* when, over the second half of the run, the lag of the
   oldest reading of each batch (publish time − its event time) stays under 15 s and does
   not grow. Side by side: the same work in one Python process without Spark (gate,
   matching, model, field on the driver), on the same files.
2. **Freshness**, reading written → route served on the new field: a router subscribed to
   the job's field store (local directory, polled every 0.1 s) records when each field
   version goes live; each reading's latency is that moment for the first field that
   includes it minus the moment it was written. At 1k and 10k readings/s.
3. **1M-edge field**: 1M edges × 3 pollutants × 4 horizons, mean and std, published to
   Redis (a real ``redis-server``) and to the local store; time until a subscribed
   router's flexible engine serves it. Side by side: the same field as GeoJSON-style
   JSON (what a map-refresh pipeline would ship), encoded and decoded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from _networks import build_graph, graph_specs  # noqa: E402
from _sections import write_section  # noqa: E402
from airpath import PollutionField, Router, load_network  # noqa: E402
from airpath.network.store import Network  # noqa: E402
from airpath.pipeline.config import StreamConfig  # noqa: E402
from airpath.pipeline.stream import start_stream  # noqa: E402
from airpath.serving import FieldSnapshot, FieldSubscriber, LocalFieldStore, network_key  # noqa: E402

OUT = REPO / "benchmarks" / "out" / "stream"
BEGIN, END = "<!-- stream:begin -->", "<!-- stream:end -->"
TARGET_SUSTAINED = 30_000
TARGET_P50_S, TARGET_P95_S = 5.0, 10.0
TARGET_LIVE_S = 1.0
POLLUTANTS = ("no2", "pm10", "pm25")


def log(msg: str) -> None:
    print(f"  … {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- workload


class Fleet:
    """Sensors at fixed street points (mobile ones move along a random walk of points)."""

    def __init__(self, network: Network, n_sensors: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        lat, lon = np.asarray(network.node_lat), np.asarray(network.node_lon)
        tail, head = np.asarray(network.edge_tail), np.asarray(network.edge_head)
        edges = rng.integers(0, network.n_edges, n_sensors)
        f = rng.uniform(0.2, 0.8, n_sensors)
        self.lat = lat[tail[edges]] * (1 - f) + lat[head[edges]] * f
        self.lon = lon[tail[edges]] * (1 - f) + lon[head[edges]] * f
        kinds = rng.choice(["reference", "low_cost", "mobile"], n_sensors, p=[0.05, 0.75, 0.2])
        self.kind = kinds
        self.ids = [f"{k[:3]}-{i:05d}" for i, k in enumerate(kinds)]
        self.base = {"no2": 35.0, "pm10": 22.0, "pm25": 12.0}
        self.rng = rng
        self.next = 0

    def lines(self, n: int, t: dt.datetime) -> list[str]:
        """``n`` readings from ``t`` on: round-robin over sensors, three pollutants each.

        When ``n`` needs more than one report per sensor, the sensors report several times
        within the second (each round ``1000 / rounds`` ms later), so that no reading
        repeats another's (sensor, time, pollutant) and is rejected as a duplicate."""
        per_round = 3 * len(self.ids)
        rounds = max(1, -(-n // per_round))
        out: list[str] = []
        first = self.next
        while len(out) < n:
            i = self.next % len(self.ids)
            k = (self.next - first) // len(self.ids)
            self.next += 1
            at = t + dt.timedelta(milliseconds=k * (1000 // rounds))
            stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for p in POLLUTANTS:
                value = self.base[p] * float(self.rng.lognormal(0.0, 0.3))
                rec: dict[str, Any] = {
                    "sensor_id": self.ids[i],
                    "sensor_kind": str(self.kind[i]),
                    "lat": round(float(self.lat[i]), 7),
                    "lon": round(float(self.lon[i]), 7),
                    "time": stamp,
                    "pollutant": p,
                    "value": round(value, 2),
                    "unit": "ug/m3",
                }
                if self.kind[i] == "mobile":
                    rec |= {"speed_mps": 4.2, "heading_deg": 90.0}
                out.append(json.dumps(rec))
        return out[:n]


class Writer(threading.Thread):
    """Lands one file per second of ``rate`` readings (atomic rename), for ``seconds``."""

    def __init__(self, fleet: Fleet, landing: Path, rate: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.fleet, self.landing, self.rate, self.seconds = fleet, landing, rate, seconds
        self.written = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        k = 0
        while not self.stop_flag.is_set() and time.monotonic() - start < self.seconds:
            due = start + k
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            lines = self.fleet.lines(self.rate, dt.datetime.now(dt.UTC))
            tmp = self.landing / f".w{k:06d}.tmp"
            tmp.write_text("\n".join(lines) + "\n")
            tmp.rename(self.landing / f"w{k:06d}.jsonl")
            self.written += len(lines)
            k += 1


# ---------------------------------------------------------------------------- 1 and 2


def run_rate(
    net_dir: Path, network: Network, rate: int, seconds: float, *, watch: bool
) -> dict[str, Any]:
    """Stream ``rate`` readings/s for ``seconds``; with ``watch``, also per-reading latency
    to a subscribed router."""
    work = Path(tempfile.mkdtemp(prefix="airpath-bench-"))
    landing = work / "landing"
    landing.mkdir()
    config = StreamConfig(
        network=net_dir, landing=landing, work=work / "job", trigger_s=1.0, field_compute="spark"
    )
    run = start_stream(config)
    applied: dict[str, float] = {}
    subscriber = None
    if watch:
        router = Router(network)
        store = LocalFieldStore(config.field_store_location)
        subscriber = FieldSubscriber(
            store,
            router,
            network_key=network_key(network),
            max_age_s=1e9,
            poll_s=0.1,
            on_applied=lambda snap: applied.setdefault(snap.version, time.time()),
        )
        subscriber.start()
    fleet = Fleet(network, 4000)
    try:
        # Warm-up: one small file, so JIT, workers and the first state are in place.
        (landing / "w-warm.jsonl").write_text(
            "\n".join(fleet.lines(500, dt.datetime.now(dt.UTC))) + "\n"
        )
        deadline = time.monotonic() + 180
        while not any(o.field_version for o in run.handler.outcomes):
            if run.query.exception() is not None:
                raise RuntimeError(str(run.query.exception())[:500])
            if time.monotonic() > deadline:
                raise RuntimeError("no first batch within 180 s")
            time.sleep(0.2)
        first = max(o.batch_id for o in run.handler.outcomes)
        writer = Writer(fleet, landing, rate, seconds)
        t0 = time.time()
        writer.start()
        writer.join()
        drain_deadline = time.monotonic() + 120
        while sum(o.rows_in for o in run.handler.outcomes if o.batch_id > first) < writer.written:
            if time.monotonic() > drain_deadline:
                break
            run.handler.retry_unpublished()
            time.sleep(0.2)
        t_end = time.time()
        time.sleep(1.0 if watch else 0.0)
    finally:
        if subscriber is not None:
            subscriber.stop()
        run.stop()
    batches = [o for o in run.handler.outcomes if o.batch_id > first and o.rows_in]
    processed = sum(o.rows_in for o in batches)
    lags = [
        ((o.finished_at - o.oldest_event_time).total_seconds(), (o.finished_at.timestamp() - t0))
        for o in batches
        if o.finished_at and o.oldest_event_time
    ]
    second_half = [lag for lag, at in lags if at >= seconds / 2]
    slope = (
        float(np.polyfit([a for _, a in lags], [lag for lag, _ in lags], 1)[0])
        if len(lags) > 3
        else 0.0
    )
    result: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "written": writer.written,
        "processed": processed,
        "processed_per_s": processed / max(t_end - t0, 1e-9),
        "batches": len(batches),
        "batch_s_p50": float(np.median([o.duration_s for o in batches])) if batches else None,
        "lag_oldest_s_p95": float(np.percentile(second_half, 95)) if second_half else None,
        "lag_slope": slope,
        "stages_s_mean": {
            k: float(np.mean([o.stages_s.get(k, 0.0) for o in batches]))
            for k in ("gate_match", "write", "learn", "field", "publish")
        }
        if batches
        else {},
    }
    result["sustained"] = bool(
        processed >= 0.98 * writer.written
        and second_half
        and max(second_half) < 15.0
        and slope < 0.2
    )
    if watch:
        result |= latency(config, applied)
    shutil.rmtree(work, ignore_errors=True)
    return result


def latency(config: StreamConfig, applied: dict[str, float]) -> dict[str, Any]:
    """Per reading: when the first field that includes it went live, minus when written."""
    table = pq.read_table(config.lake / "readings", columns=["time", "batch_id"]).to_pandas()
    live = {int(v[1:]): t for v, t in applied.items()}
    versions = sorted(live)
    waits: list[np.ndarray] = []
    for b, group in table.groupby("batch_id"):
        later = [v for v in versions if v >= int(b)]
        if not later:
            continue
        written = group["time"].astype("int64").to_numpy() / 1e9
        if written.max() > 1e12:  # pandas gave µs or ns; normalise to seconds
            written = written / 1e3
        waits.append(live[later[0]] - written)
    if not waits:
        return {"latency_p50_s": None, "latency_p95_s": None}
    all_w = np.concatenate(waits)
    return {
        "latency_p50_s": float(np.percentile(all_w, 50)),
        "latency_p95_s": float(np.percentile(all_w, 95)),
        "latency_readings": len(all_w),
    }


def run_peer(net_dir: Path, network: Network, n_rows: int) -> dict[str, Any]:
    """The same per-batch work in one Python process, without Spark: gate, match, learn,
    field on every edge — rows per second of compute."""
    from airpath.air.gate import gate_lines
    from airpath.air.rules import Area
    from airpath.pipeline.batch import _observations
    from airpath.pipeline.matching import match_frames
    from airpath.pipeline.model import StreamModel
    from airpath.pipeline.processor import to_output
    from airpath.pipeline.tiles import space_at

    fleet = Fleet(network, 4000)
    bbox = [float(v) for v in network.manifest["bbox"]]
    area = Area(*bbox)
    space = space_at(str(net_dir.resolve()))
    model = StreamModel(space, (0.0, 15.0, 30.0, 60.0))
    memories: dict[str, Any] = {}
    batches = [fleet.lines(n_rows, dt.datetime.now(dt.UTC)) for _ in range(4)]
    times = []
    for k, lines in enumerate(batches):
        t = time.perf_counter()
        now = int(time.time() * 1000)
        r = gate_lines(lines, memories, now_ms=now, watermark_ms=None, area=area)
        memories = r.memories
        out = to_output(r.valid, r.rejected)
        matched = next(match_frames(str(net_dir.resolve()), iter([out])))
        valid = matched[matched["status"] == "valid"]
        model.learn(_observations(valid))
        model.plan(dt.datetime.now(dt.UTC), (0.0, 15.0, 30.0, 60.0)).evaluate(space)
        if k:  # the first one compiles kernels
            times.append(time.perf_counter() - t)
    per_s = n_rows / float(np.median(times))
    return {"rows_per_batch": n_rows, "batch_s_p50": float(np.median(times)), "rows_per_s": per_s}


# ---------------------------------------------------------------------------- 3


def field_live(net_dir: Path, repeats: int) -> dict[str, Any]:
    network = load_network(net_dir)
    key = network_key(network)
    rng = np.random.default_rng(0)
    n = network.n_edges
    horizons = (0.0, 15.0, 30.0, 60.0)
    log(f"field live: router on {n:,} edges")
    router = Router(network)
    results: dict[str, Any] = {"edges": n}
    stores: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="airpath-field-"))
    server = None
    redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
    if Path(redis_bin).exists():
        port = 6391
        server = subprocess.Popen(
            [
                redis_bin,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--dir",
                str(tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        from airpath.serving import RedisFieldStore

        stores["redis"] = (
            RedisFieldStore(f"redis://127.0.0.1:{port}/0", network_key=key, timeout_s=30.0),
            RedisFieldStore(f"redis://127.0.0.1:{port}/0", network_key=key, timeout_s=30.0),
        )
    stores["local"] = (LocalFieldStore(tmp / "fields"), LocalFieldStore(tmp / "fields"))
    try:
        for name, (writer, reader) in stores.items():
            live: dict[str, float] = {}
            sub = FieldSubscriber(
                reader,
                router,
                network_key=key,
                max_age_s=1e9,
                poll_s=0.05,
                on_applied=lambda s, live=live: live.setdefault(s.version, time.time()),
            )
            sub.start()
            waits = []
            for k in range(repeats):
                conc = {p: rng.uniform(5, 60, (len(horizons), n)) for p in POLLUTANTS}
                sd = {p: 0.2 * c for p, c in conc.items()}
                version = f"{name}-{k}"
                fld = PollutionField.create(
                    version,
                    dt.datetime.now(dt.UTC),
                    conc,
                    n_edges=n,
                    horizons_min=horizons,
                    uncertainty_ugm3=sd,
                )
                snap = FieldSnapshot(
                    fld, key, "bench", dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC)
                )
                t = time.time()
                writer.publish(snap)
                deadline = time.monotonic() + 30
                while router.field.version != version and time.monotonic() < deadline:
                    time.sleep(0.005)
                waits.append(time.time() - t)
            sub.stop()
            results[name] = {"live_s": waits, "live_s_median": float(np.median(waits))}
            log(f"field live via {name}: median {np.median(waits):.3f} s")
        # Peer: the same field as JSON lists (what a GeoJSON/JSON map refresh ships).
        conc = {p: rng.uniform(5, 60, (len(horizons), n)) for p in POLLUTANTS}
        t = time.perf_counter()
        text = json.dumps(
            {p: {"mean": a.tolist(), "sd": (0.2 * a).tolist()} for p, a in conc.items()}
        )
        back = json.loads(text)
        _ = {p: np.asarray(v["mean"]) for p, v in back.items()}
        results["json_peer_s"] = time.perf_counter() - t
        results["json_mb"] = len(text) / 1e6
    finally:
        for writer, reader in stores.values():
            writer.close()
            reader.close()
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


# ---------------------------------------------------------------------------- report


def render(report: dict[str, Any], command: str) -> str:
    tp = report["throughput"]
    best = max((r["rate"] for r in tp if r["sustained"]), default=0)
    peer = report["peer"]
    lines = [
        BEGIN,
        "## Streaming pipeline (Spark local[2])",
        "",
        f"Command: `{command}` — {report['when']}, Barcelona network "
        f"({report['edges']:,} edges), {report['machine']}.",
        "",
        f"- **Sustained throughput:** {best:,} readings/s "
        f"({'PASS' if best >= TARGET_SUSTAINED else 'FAIL'}: target ≥ {TARGET_SUSTAINED:,}). "
        f"Peer, the same work in one Python process without Spark: "
        f"{peer['rows_per_s']:,.0f} readings/s of compute.",
        "",
        "| offered readings/s | processed/s | batches | batch p50 (s) "
        "| oldest-reading lag p95 (s) | lag trend (s/s) | sustained |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in tp:
        lines.append(
            f"| {r['rate']:,} | {r['processed_per_s']:,.0f} | {r['batches']} | "
            f"{_f(r['batch_s_p50'])} | {_f(r['lag_oldest_s_p95'])} | {r['lag_slope']:+.2f} | "
            f"{'yes' if r['sustained'] else 'no'} |"
        )
    lines += [
        "",
        "Mean seconds per batch by stage (last rate): "
        + ", ".join(f"{k} {v:.2f}" for k, v in tp[-1]["stages_s_mean"].items()),
        "",
    ]
    lines += [
        "| readings/s | reading → route on new field p50 (s) | p95 (s) | target |",
        "| --- | --- | --- | --- |",
    ]
    for r in report["freshness"]:
        ok = (r["latency_p50_s"] or 1e9) <= TARGET_P50_S and (
            r["latency_p95_s"] or 1e9
        ) <= TARGET_P95_S
        lines.append(
            f"| {r['rate']:,} | {_f(r['latency_p50_s'])} | {_f(r['latency_p95_s'])} | "
            f"{'PASS' if ok else 'FAIL'} (p50 ≤ {TARGET_P50_S:g}, p95 ≤ {TARGET_P95_S:g}) |"
        )
    fl = report["field"]
    lines += [
        "",
        f"**1M-edge field live** ({fl['edges']:,} edges × 3 pollutants × 4 horizons, mean + std):",
    ]
    for name in ("redis", "local"):
        if name in fl:
            med = fl[name]["live_s_median"]
            lines.append(
                f"- via {name}: publish → flexible engine serving it, median {med:.2f} s "
                f"({'PASS' if med <= TARGET_LIVE_S else 'FAIL'}: ≤ {TARGET_LIVE_S:g} s)"
            )
    lines.append(
        f"- peer, the same field as JSON ({fl['json_mb']:.0f} MB) encoded and decoded: "
        f"{fl['json_peer_s']:.2f} s"
    )
    lines += ["", END, ""]
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="5000,10000,20000,30000")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--quick", action="store_true", help="short runs, no report")
    parser.add_argument("--skip-field", action="store_true")
    args = parser.parse_args()
    specs = graph_specs()
    if "barcelona" not in specs:
        print("bench_stream: needs the Barcelona data in ../shared/data/bcn", file=sys.stderr)
        return 1
    root = REPO / "benchmarks" / "out" / "networks"
    bcn = build_graph(specs["barcelona"], root, rebuild=False, log=log).path
    network = load_network(bcn)
    seconds = 12.0 if args.quick else args.seconds
    rates = [int(r) for r in args.rates.split(",")]
    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "edges": network.n_edges,
    }
    from _report import machine_info

    m = machine_info()
    report["machine"] = f"{m['cpu']}, {m['cores']} cores"
    log("peer: one Python process, no Spark")
    report["peer"] = run_peer(bcn, network, 10_000)
    report["throughput"] = []
    for rate in rates:
        log(f"throughput at {rate:,} readings/s for {seconds:g} s")
        r = run_rate(bcn, network, rate, seconds, watch=False)
        log(f"  processed {r['processed_per_s']:,.0f}/s, sustained: {r['sustained']}")
        report["throughput"].append(r)
    report["freshness"] = []
    for rate in (1000, 10_000):
        log(f"freshness at {rate:,} readings/s")
        report["freshness"].append(run_rate(bcn, network, rate, seconds, watch=True))
        log(
            f"  p50 {report['freshness'][-1]['latency_p50_s']}, "
            f"p95 {report['freshness'][-1]['latency_p95_s']}"
        )
    if not args.skip_field:
        grid = build_graph(specs["grid"], root, rebuild=False, log=log).path
        report["field"] = field_live(grid, 3 if args.quick else 5)
    else:
        report["field"] = {"edges": 0, "json_mb": 0.0, "json_peer_s": 0.0}
    OUT.mkdir(parents=True, exist_ok=True)
    command = shlex.join([".venv/bin/python", "benchmarks/bench_stream.py", *sys.argv[1:]])
    report["_command"] = command
    (OUT / ("report-quick.json" if args.quick else "report.json")).write_text(
        json.dumps(report, indent=1, default=str)
    )
    text = render(report, command)
    print(text)
    if not args.quick:
        print(f"wrote {write_section(BEGIN, END, text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
