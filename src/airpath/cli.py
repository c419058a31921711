"""The ``airpath`` command: one subcommand per stage. Thin: parsing and printing only.

Every :class:`~airpath.errors.AirpathError` becomes one line on stderr and exit code 2;
an unexpected exception still gets one line (and exit 3) rather than a traceback, unless
``AIRPATH_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airpath.errors import AirpathError, CoordinateError, InputError

if TYPE_CHECKING:
    from airpath.routing.result import Route

EXIT_INPUT = 2
EXIT_BUG = 3


def _latlon(text: str) -> tuple[float, float]:
    try:
        lat_s, lon_s = text.split(",")
        return float(lat_s), float(lon_s)
    except ValueError:
        raise CoordinateError(f"expected LAT,LON (e.g. 60.17,24.94), got {text!r}") from None


def _progress(msg: str) -> None:
    print(f"  … {msg}", file=sys.stderr, flush=True)


def cmd_network_build(args: argparse.Namespace) -> int:
    from airpath.network.sources import build_from_sources

    report = build_from_sources(
        args.sources,
        args.out,
        elevation=args.elevation or (),
        profile_path=args.profile,
        progress=_progress,
    )
    print(f"wrote {report.path}: {report.summary()}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    from airpath import Router, load_network

    router = Router(load_network(args.network), max_snap_m=args.max_snap_m)
    depart = None
    if args.depart:
        try:
            depart = dt.datetime.fromisoformat(args.depart)
        except ValueError:
            raise InputError(f"--depart: not an ISO 8601 time: {args.depart!r}") from None
        if depart.tzinfo is None:
            depart = depart.astimezone()
    result = router.route(
        _latlon(args.origin),
        _latlon(args.destination),
        args.profile,
        pollutant=args.pollutant,
        depart=depart,
        alternatives=args.alternatives,
        max_detour_pct=args.max_detour,
        balance=args.balance,
    )
    if args.geojson:
        Path(args.geojson).write_text(json.dumps(result.to_geojson()))
    if args.json:
        print(json.dumps(result.to_geojson(), indent=2))
        return 0
    for route in result.routes:
        print(_route_line(route))
    return 0


def _route_line(r: Route) -> str:
    return (
        f"{r.label:<62} {r.distance_m / 1000:6.2f} km {r.duration_s / 60:5.1f} min "
        f"dose {r.dose_ug:7.2f} µg  mean {r.mean_concentration_ugm3:5.1f} µg/m³"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from airpath.demo import DemoConfig, print_examples, run_demo

    if args.examples:
        return print_examples(Path(args.workdir), progress=_progress)
    config = DemoConfig(
        workdir=Path(args.workdir),
        city=args.city,
        data=Path(args.data) if args.data else None,
        speed=args.speed,
        host=args.host,
        port=args.port,
    )
    return run_demo(config, progress=_progress)


def cmd_simulate(args: argparse.Namespace) -> int:
    from airpath.sensors.clock import parse_duration_s, parse_time
    from airpath.sensors.output import run_simulation
    from airpath.sensors.simulator import SimulationConfig

    config = SimulationConfig.create(
        parse_time(args.start),
        parse_duration_s(args.duration),
        args.seed,
        slice_s=parse_duration_s(args.slice),
        n_low_cost=args.low_cost,
        n_mobile=args.mobile,
        timezone=args.timezone,
    )

    def percent(pct: float) -> None:
        print(f"\r  … simulate {pct:3.0f}%", end="", file=sys.stderr, flush=True)

    report = run_simulation(
        args.network,
        args.out,
        config,
        stations_file=args.stations,
        incidents_file=args.incidents,
        truth_every_s=parse_duration_s(args.truth_every),
        speed=args.speed,
        progress=percent,
    )
    print(file=sys.stderr)
    print(f"wrote {report.out_dir}: {report.summary()}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from airpath.air.evaluation import EvaluationConfig, evaluate
    from airpath.sensors.clock import parse_duration_s, parse_time

    config = EvaluationConfig.create(
        start=parse_time(args.start),
        hours=args.hours,
        seed=args.seed,
        batch_min=parse_duration_s(args.batch) / 60.0,
        score_every_min=parse_duration_s(args.score_every) / 60.0,
        n_trips=args.trips,
        n_low_cost=args.low_cost,
        n_mobile=args.mobile,
    )
    report = evaluate(
        args.network,
        args.report,
        config,
        stations_file=args.stations,
        beijing_dir=args.beijing,
        progress=_progress,
    )
    h0 = report["targets"]["rmse_vs_idw_h0"]["achieved_pct"]
    hybrid = {p: v.get("0") for p, v in report["rmse_reduction_vs_prior_idw_pct"].items()}
    print(
        f"wrote {Path(args.report) / 'report.json'} in {report['runtime_s']['total']:.0f} s; "
        "RMSE below IDW at horizon 0: "
        + ", ".join(f"{p} {v:+.1f} %" for p, v in h0.items() if v is not None)
        + "; below prior × IDW: "
        + ", ".join(f"{p} {v:+.1f} %" for p, v in hybrid.items() if v is not None)
    )
    return 0


def _duration_s(text: str) -> float:
    from airpath.sensors.clock import parse_duration_s

    return parse_duration_s(text)


def cmd_stream(args: argparse.Namespace) -> int:
    import logging

    from airpath.errors import PipelineConfigError
    from airpath.pipeline.config import StreamConfig
    from airpath.pipeline.stream import run_stream

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    conf: dict[str, str] = {}
    for item in args.conf or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PipelineConfigError(f"--conf takes KEY=VALUE, got {item!r}")
        conf[key] = value
    try:
        horizons = tuple(float(h) for h in args.horizons.split(","))
    except ValueError:
        raise PipelineConfigError(
            f"--horizons takes minutes like 0,15,30,60, got {args.horizons!r}"
        ) from None
    config = StreamConfig(
        network=Path(args.network),
        landing=Path(args.landing),
        work=Path(args.work),
        field_store=args.field_store,
        input_format=args.format,
        master=args.master,
        trigger_s=_duration_s(args.trigger),
        max_files_per_trigger=args.max_files_per_trigger,
        watermark_delay_s=_duration_s(args.watermark),
        clock=args.clock,
        horizons_min=horizons,
        tile_deg=args.tile_deg,
        field_compute=args.field_compute,
        shuffle_partitions=args.partitions,
        metrics_port=args.metrics_port,
        spark_conf=conf,
        kafka_bootstrap=args.kafka_bootstrap,
        kafka_topic=args.kafka_topic,
        models=Path(args.models) if args.models else None,
    )
    run = run_stream(config, once=args.once, progress=_progress)
    done = run.handler.outcomes
    print(
        f"processed {sum(o.rows_in for o in done)} rows in {len(done)} batches; "
        f"last field {next((o.field_version for o in reversed(done) if o.field_version), '-')}"
    )
    return 0


def cmd_ingest_mqtt(args: argparse.Namespace) -> int:
    import signal
    import threading

    from airpath.sensors.mqtt import BridgeStats, MqttConfig, run_bridge

    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--broker takes HOST:PORT, got {args.broker!r}")
    config = MqttConfig(host=host, port=int(port), topic=args.topic, client_id=args.client_id)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def show(stats: BridgeStats) -> None:
        _progress(
            f"{stats.messages_received} messages, {stats.lines_landed} readings landed in "
            f"{stats.files_written} files, {stats.reconnects} reconnects"
        )

    final = run_bridge(config, args.landing, stop, show)
    print(f"landed {final.lines_landed} readings in {final.files_written} files")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airpath", description="Cycling routes that minimise the air pollution you breathe."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    net = sub.add_parser("network", help="street networks").add_subparsers(
        dest="network_command", required=True
    )
    b = net.add_parser("build", help="build a routable network from OSM files or city data")
    b.add_argument(
        "sources",
        nargs="+",
        help="OSM files (.osm.pbf, .osm, .osm.gz, .osm.bz2), "
        "the Barcelona data folder, or 'helsinki' for the bundled extract",
    )
    b.add_argument("--out", required=True, help="network directory to write")
    b.add_argument("--elevation", nargs="*", metavar="HGT", help="SRTM .hgt or .hgt.zip tiles")
    b.add_argument("--profile", help="bicycle profile TOML (default: the bundled one)")
    b.set_defaults(func=cmd_network_build)

    r = sub.add_parser("route", help="route between two points")
    r.add_argument("--network", required=True)
    r.add_argument("--from", dest="origin", required=True, metavar="LAT,LON")
    r.add_argument("--to", dest="destination", required=True, metavar="LAT,LON")
    r.add_argument(
        "--profile",
        default="least_exposure",
        help="shortest, fastest, least_exposure, balanced or comfort",
    )
    r.add_argument("--pollutant", default="no2")
    r.add_argument("--depart", help="departure time, ISO 8601 (uses forecast horizons)")
    r.add_argument("--alternatives", type=int, default=0)
    r.add_argument("--max-detour", type=float, help="balanced: at most this %% extra distance")
    r.add_argument("--balance", type=float, help="balanced: weight of time vs dose, 0..1")
    r.add_argument("--max-snap-m", type=float, default=500.0)
    r.add_argument("--geojson", help="write the routes as GeoJSON to this file")
    r.add_argument("--json", action="store_true", help="print the full result as GeoJSON")
    r.set_defaults(func=cmd_route)

    d = sub.add_parser(
        "demo", help="the whole system: simulated city, streaming job, API and live map"
    )
    d.add_argument("--workdir", default=".airpath", help="networks, job state and logs")
    d.add_argument("--city", default="helsinki", choices=["helsinki", "barcelona"])
    d.add_argument("--data", help="--city barcelona: the Barcelona data folder")
    d.add_argument("--speed", type=float, default=1.0, help="simulated s per wall s (default 1)")
    d.add_argument("--host", default="127.0.0.1", help="address of the web map (default local)")
    d.add_argument("--port", type=int, default=8080, help="port of the web map (default 8080)")
    d.add_argument("--examples", action="store_true", help="print example routes and exit")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("simulate", help="simulate a city: true pollution and sensor readings")
    s.add_argument("--network", required=True, help="network directory")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--duration", default="24h", help="e.g. 24h, 90min (default 24h)")
    s.add_argument("--start", default="2026-05-01T00:00Z", help="ISO 8601 start, UTC if no offset")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--speed", type=float, default=0.0, help="simulated s per wall s (0: as fast as possible)"
    )
    s.add_argument("--stations", help="reference stations JSON (e.g. Barcelona's feed)")
    s.add_argument("--incidents", help="incident schedule JSON (default: random, Poisson)")
    s.add_argument("--low-cost", type=int, default=10, help="number of low-cost fixed sensors")
    s.add_argument("--mobile", type=int, default=5, help="number of bike-mounted sensors")
    s.add_argument("--slice", default="1min", help="one readings file per slice (default 1min)")
    s.add_argument("--truth-every", default="15min", help="truth snapshot interval")
    s.add_argument("--timezone", help="IANA zone of the diurnal profile (default: from bbox)")
    s.set_defaults(func=cmd_simulate)

    st = sub.add_parser("stream", help="the Spark streaming job: readings in, live field out")
    st.add_argument("--network", required=True, help="network directory")
    st.add_argument("--landing", default=".airpath/landing", help="directory readings land in")
    st.add_argument("--work", default=".airpath/stream", help="checkpoints, lake, dead letters")
    st.add_argument("--field-store", help="directory or redis://host:port/db (default WORK/fields)")
    st.add_argument("--format", default="jsonl", choices=["jsonl", "csv", "parquet", "kafka"])
    st.add_argument("--kafka-bootstrap", help="format kafka: HOST:PORT[,…] of the brokers")
    st.add_argument("--kafka-topic", default="airpath.readings", help="format kafka: topic")
    st.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    st.add_argument("--trigger", default="1s", help="micro-batch interval (default 1s)")
    st.add_argument("--max-files-per-trigger", type=int, help="cap files per micro-batch")
    st.add_argument("--watermark", default="10min", help="event-time watermark delay")
    st.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "event"],
        help="wall: live data; event: replay recorded files (ages from the data's own time)",
    )
    st.add_argument("--horizons", default="0,15,30,60", help="field horizons, minutes")
    st.add_argument("--tile-deg", type=float, default=0.01, help="spatial tile size, degrees")
    st.add_argument("--field-compute", default="spark", choices=["spark", "driver"])
    st.add_argument("--partitions", type=int, default=2, help="shuffle partitions")
    st.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    st.add_argument("--conf", action="append", metavar="KEY=VALUE", help="Spark setting")
    st.add_argument(
        "--models", help="model registry of `airpath train`: newer versions adopted live"
    )
    st.add_argument("--once", action="store_true", help="process the files present, then stop")
    st.set_defaults(func=cmd_stream)

    ing = sub.add_parser("ingest", help="land readings from a sensor feed").add_subparsers(
        dest="ingest_command", required=True
    )
    mq = ing.add_parser("mqtt", help="MQTT broker → landing directory (at least once, durable)")
    mq.add_argument("--broker", default="localhost:1883", help="HOST:PORT (default localhost:1883)")
    mq.add_argument("--topic", default="airpath/readings/#", help="topic filter")
    mq.add_argument("--client-id", default="airpath-bridge", help="fixed: the session's name")
    mq.add_argument("--landing", required=True, help="landing directory of the streaming job")
    mq.set_defaults(func=cmd_ingest_mqtt)

    from airpath.api.cli import add_serve_parser
    from airpath.deploy.cli import add_k8s_parser
    from airpath.pipeline.train import add_train_arguments, cmd_train

    add_serve_parser(sub)
    add_k8s_parser(sub)

    tr = sub.add_parser("train", help="Spark batch job: fit the model from the history lake")
    add_train_arguments(tr)
    tr.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="score the estimators and routes on a simulated day")
    e.add_argument("--network", required=True, help="network directory")
    e.add_argument("--report", required=True, help="directory for report.json and the plots")
    e.add_argument("--stations", help="reference stations JSON (e.g. Barcelona's feed)")
    e.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    e.add_argument("--start", default="2026-05-01T00:00Z", help="ISO 8601 start, UTC if no offset")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch", default="5min", help="estimator batch interval (default 5min)")
    e.add_argument("--score-every", default="15min", help="scoring interval (default 15min)")
    e.add_argument("--trips", type=int, default=200, help="random trips for the exposure benefit")
    e.add_argument("--low-cost", type=int, default=10, help="number of low-cost fixed sensors")
    e.add_argument("--mobile", type=int, default=5, help="number of bike-mounted sensors")
    e.add_argument("--beijing", help="also evaluate on the Beijing multi-site data in this folder")
    e.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AirpathError as exc:
        print(f"airpath: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("airpath: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("AIRPATH_DEBUG"):
            raise
        print(
            f"airpath: internal error: {type(exc).__name__}: {exc} "
            "(set AIRPATH_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
