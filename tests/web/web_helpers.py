"""Helpers of the web map tests: the API server in a subprocess and field snapshots."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from airpath import PollutionField
from airpath.network.store import Network
from airpath.serving import FieldSnapshot, LocalFieldStore, network_key
from servers import wait_until

HORIZONS_MIN = (0.0, 15.0, 30.0, 60.0)
# Between the test's two points, so that the least-exposure route has a reason to detour.
HOTSPOT = (60.1715, 24.9430)
_START_TIMEOUT_S = 30.0


def hotspot_snapshot(
    network: Network,
    version: str,
    *,
    centre: tuple[float, float],
    peak_ugm3: float,
    background_ugm3: float = 12.0,
    radius_m: float = 300.0,
) -> FieldSnapshot:
    """A fresh snapshot with a Gaussian pollution hotspot at ``centre`` (lat, lon) over a
    uniform background, every pollutant (PM at 0.6 and 0.35 × NO2), horizons 0–60 min."""
    lat = 0.5 * (network.node_lat[network.edge_tail] + network.node_lat[network.edge_head])
    lon = 0.5 * (network.node_lon[network.edge_tail] + network.node_lon[network.edge_head])
    m_per_deg_lat = 111_320.0
    m_per_deg_lon = m_per_deg_lat * np.cos(np.radians(centre[0]))
    d_m = np.hypot((lat - centre[0]) * m_per_deg_lat, (lon - centre[1]) * m_per_deg_lon)
    no2 = background_ugm3 + peak_ugm3 * np.exp(-((d_m / radius_m) ** 2))
    factors = {"no2": 1.0, "pm10": 0.6, "pm25": 0.35}
    conc = {
        p: np.vstack([no2 * factors.get(p, 1.0) * (1.0 + h / 240.0) for h in HORIZONS_MIN])
        for p in network.pollutants
    }
    now = dt.datetime.now(dt.UTC)
    fld = PollutionField.create(
        version, now, conc, n_edges=network.n_edges, horizons_min=HORIZONS_MIN
    )
    return FieldSnapshot(fld, network_key(network), "web-test-model", now, now)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    """``airpath serve`` on a free port with a local field store; restart-free."""

    def __init__(self, network_dir: Path, workdir: Path) -> None:
        self.network_dir = network_dir
        self.store_dir = workdir / "fields"
        self.log_path = workdir / "server.log"
        self.port = _free_port()
        self.store = LocalFieldStore(self.store_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, snapshot: FieldSnapshot) -> None:
        self.store.publish(snapshot)

    def get_json(self, path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def start(self, version: str) -> None:
        """Start the server and wait until it is ready on field ``version``."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airpath.cli",
                "serve",
                "--network",
                str(self.network_dir),
                "--field-store",
                str(self.store_dir),
                "--port",
                str(self.port),
                "--max-field-age",
                "0",
                "--log-level",
                "warning",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"airpath serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                status, body = self.get_json("/readyz")
            except OSError:
                return False
            field = body.get("field")
            return status == 200 and isinstance(field, dict) and field["version"] == version

        wait_until(ready, _START_TIMEOUT_S, f"airpath serve ready on field {version}")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
