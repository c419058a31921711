"""A real mosquitto broker for tests: free port, persistence, stop and restart in place.

The broker persists to its own directory (``autosave_interval 1`` and a save on SIGTERM),
so a restart on the same port keeps sessions, subscriptions and queued messages, as a
production broker with ``persistence true`` would. ``max_queued_messages 0`` lifts
mosquitto's default cap of 1000 queued messages per offline client, which would
otherwise drop readings while the bridge is down.
"""

from __future__ import annotations

import getpass
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

BINARY = Path("/usr/sbin/mosquitto")
START_TIMEOUT_S = 10.0


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 20 ms until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """One broker process in ``workdir``; :meth:`restart` keeps its port and its data."""

    def __init__(self, workdir: Path) -> None:
        if not BINARY.exists():
            pytest.skip("mosquitto not installed; .ci/run installs it with apt")
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.n_starts = 0

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # as root mosquitto would switch to the "mosquitto" user, who cannot write here
            f"user {getpass.getuser()}\n"
        )
        return conf

    def start(self) -> None:
        for _attempt in range(3 if self.port == 0 else 1):
            if self.n_starts == 0:
                self.port = _free_port()  # another process may grab it first: retry
            log = (self.workdir / "mosquitto.log").open("ab")
            self.proc = subprocess.Popen(
                [str(BINARY), "-c", str(self._write_config())], stdout=log, stderr=log
            )
            log.close()
            deadline = time.monotonic() + START_TIMEOUT_S
            while self.proc.poll() is None and time.monotonic() < deadline:
                if _accepts(self.port):
                    self.n_starts += 1
                    return
                time.sleep(0.02)
            self._terminate()
        pytest.fail(f"mosquitto did not start; see {self.workdir / 'mosquitto.log'}")

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # mosquitto saves persistence on exit
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM and wait: the broker writes its database before it exits."""
        self._terminate()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""
