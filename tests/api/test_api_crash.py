"""Durability across a crash: a real server (uvicorn, its own process) takes readings
from several clients at once and is SIGKILLed right after a ``202 Accepted``; every
reading it accepted must be in a complete file of the landing directory."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import TOKEN, TOKENS, landed_records

N_CLIENTS = 3
KILL_AFTER_ACCEPTED = 40  # requests
PER_REQUEST = 5  # readings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode} before answering")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a process we cannot be notified by
    pytest.fail(f"server not healthy after {timeout_s} s")


def test_accepted_readings_survive_sigkill(
    helsinki_dir: Path, tmp_path: Path, reading: Callable[..., dict[str, Any]]
) -> None:
    landing, tokens = tmp_path / "landing", tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    port = _free_port()
    cmd = [
        sys.executable, "-m", "airpath.api", "serve", "--network", str(helsinki_dir),
        "--landing", str(landing), "--tokens", str(tokens), "--port", str(port),
        "--max-field-age", "0", "--rate", "10000", "--burst", "10000", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    accepted: list[dict[str, Any]] = []
    lock = threading.Lock()
    enough = threading.Event()
    try:
        _wait_healthy(base, proc)

        def send(k: int) -> None:
            with httpx.Client(base_url=base, timeout=10.0) as client:
                n = 0
                while not enough.is_set():
                    batch = [reading(sensor_id=f"c{k}-{n}-{j}") for j in range(PER_REQUEST)]
                    n += 1
                    try:
                        r = client.post(
                            "/v1/readings", json=batch, headers={"Authorization": f"Bearer {TOKEN}"}
                        )
                    except httpx.TransportError:
                        return  # the server is gone: nothing more was accepted
                    assert r.status_code == 202, r.text
                    with lock:
                        accepted.extend(batch)
                        if len(accepted) >= KILL_AFTER_ACCEPTED * PER_REQUEST:
                            proc.send_signal(signal.SIGKILL)  # at once, requests in flight
                            enough.set()

        clients = [threading.Thread(target=send, args=(k,)) for k in range(N_CLIENTS)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(60.0)
        assert enough.is_set()
    finally:
        proc.kill()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    landed = landed_records(landing)
    keys = {(r["sensor_id"], r["time"]) for r in landed}
    missing = [r for r in accepted if (r["sensor_id"], r["time"]) not in keys]
    assert not missing, f"{len(missing)} of {len(accepted)} accepted readings not landed"
    assert len(accepted) >= KILL_AFTER_ACCEPTED * PER_REQUEST
