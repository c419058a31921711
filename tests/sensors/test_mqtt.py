"""The MQTT bridge against a real mosquitto: nothing lost through broker and bridge failures.

Every test starts its own broker (persistent, on a free port). Readings carry unique keys
(sensor_id, time, pollutant); a test passes when every published key is in the landing
directory, read back with the downstream parser. Duplicates are allowed (at-least-once)
and printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from airpath.air.parsers import parse_jsonl
from airpath.air.readings import Rejected, RejectReason
from airpath.air.schema import Pollutant, Reading, SensorKind
from airpath.errors import PipelineConfigError, SourceError
from airpath.sensors.landing import LandingWriter, MemoryLanding
from airpath.sensors.mqtt import MqttBridge, MqttConfig, publish_readings
from airpath.sensors.output import reading_to_json
from mosquitto import Mosquitto, wait_until

START = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
TOPIC = "airpath/readings/test"
POLLUTANTS = list(Pollutant)

Key = tuple[str, dt.datetime, str]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker")
    server.start()
    yield server
    server.stop()


def make_readings(n: int, tag: str) -> list[Reading]:
    return [
        Reading(f"{tag}-{i % 40:02d}", SensorKind.LOW_COST, 60.17 + i * 1e-6, 24.94,
                START + dt.timedelta(seconds=i), POLLUTANTS[i % 4], 10.0 + i % 97)
        for i in range(n)
    ]  # fmt: skip


def key(r: Reading) -> Key:
    return (r.sensor_id, r.time, str(r.pollutant))


def visible(directory: Path) -> list[Path]:
    """The files Spark's file source would read: names not starting with '.' or '_'."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if not p.name.startswith((".", "_")))


def landed(directory: Path) -> tuple[list[Reading], list[Rejected]]:
    good: list[Reading] = []
    bad: list[Rejected] = []
    for path in visible(directory):
        g, b = parse_jsonl(path)
        good += g
        bad += b
    return good, bad


def n_lines(directory: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in visible(directory))


def config(broker: Mosquitto, client_id: str) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=broker.port, client_id=client_id)


def wait_all_landed(directory: Path, expected: set[Key], timeout_s: float) -> list[Reading]:
    """Poll (parsing only when the line count grew) until every expected key has landed."""
    state: dict[str, Any] = {"lines": -1, "good": []}

    def complete() -> bool:
        count = n_lines(directory)
        if count != state["lines"]:
            state["lines"] = count
            state["good"] = landed(directory)[0]
        return expected <= {key(r) for r in state["good"]}

    deadline = time.monotonic() + timeout_s
    while not complete():
        if time.monotonic() > deadline:
            missing = len(expected - {key(r) for r in state["good"]})
            pytest.fail(f"{missing} of {len(expected)} readings never landed")
        time.sleep(0.05)
    good: list[Reading] = state["good"]
    return good


def duplicates(good: list[Reading]) -> int:
    return len(good) - len({key(r) for r in good})


class Publisher(threading.Thread):
    """Publishes readings in chunks, paced, as a fleet would; ``sent`` counts broker acks."""

    def __init__(self, port: int, readings: list[Reading], *, chunk: int, pace_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.readings, self.chunk, self.pace_s = port, readings, chunk, pace_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for k in range(0, len(self.readings), self.chunk):
                batch = self.readings[k : k + self.chunk]
                publish_readings("127.0.0.1", self.port, TOPIC, batch, timeout_s=30)
                self.sent += len(batch)
                time.sleep(self.pace_s)  # a sensor fleet's pace, not a wait for a condition
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout_s: float) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), "publisher hung"
        assert self.error is None, self.error
        assert self.sent == len(self.readings)


def bridge_threads() -> list[str]:
    names = [t.name for t in threading.enumerate()]
    return [n for n in names if n == "mqtt-flusher" or n.startswith("paho-mqtt-client-")]


def test_every_reading_lands_once(broker: Mosquitto, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    readings = make_readings(2000, "e2e")
    bridge = MqttBridge(config(broker, "bridge-e2e"), LandingWriter(land))
    bridge.start()
    try:
        assert bridge.wait_subscribed(10)
        assert publish_readings("127.0.0.1", broker.port, TOPIC, readings) == 2000
        wait_until(lambda: bridge.stats().acks_sent >= 2000, 20, "2000 acks")
    finally:
        bridge.stop()
    good, bad = landed(land)
    assert Counter(good) == Counter(readings)
    assert bad == []
    stats = bridge.stats()
    assert (stats.messages_received, stats.lines_landed, stats.acks_sent) == (2000, 2000, 2000)
    assert stats.files_written == len(visible(land))
    assert stats.reconnects == 0
    assert bridge_threads() == []  # stop() joined the network loop and the flusher


class StalledLanding(LandingWriter):
    """A landing disk that can stall: while it does, the bridge acknowledges nothing."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.flowing = threading.Event()
        self.flowing.set()

    def write_lines(self, lines: Sequence[str | bytes]) -> Path:
        assert self.flowing.wait(30), "landing stalled for good"
        return super().write_lines(lines)


def test_broker_restart_mid_stream_loses_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    readings = make_readings(3000, "restart")
    # With the landing stalled and at most 50 messages in flight to the bridge, the broker
    # has to queue what the publisher keeps sending; that queue must survive the restart.
    landing = StalledLanding(land)
    bridge = MqttBridge(
        dataclasses.replace(config(broker, "bridge-restart"), max_batch=50), landing
    )
    bridge.start()
    publisher = Publisher(broker.port, readings, chunk=50, pace_s=0.02)
    try:
        assert bridge.wait_subscribed(10)
        publisher.start()
        wait_until(lambda: bridge.stats().lines_landed >= 500, 20, "500 landed lines")
        landing.flowing.clear()
        wait_until(
            lambda: publisher.sent - bridge.stats().messages_received >= 300, 20, "a backlog"
        )
        backlog = publisher.sent - bridge.stats().messages_received
        broker.restart()  # SIGTERM (the broker saves its state), start on the same port
        landing.flowing.set()
        assert publisher.is_alive(), "the publisher finished before the restart"
        publisher.finish(60)
        good = wait_all_landed(land, {key(r) for r in readings}, 30)
    finally:
        landing.flowing.set()
        bridge.stop()
    stats = bridge.stats()
    assert stats.reconnects >= 1
    print(
        f"\nbroker restart with {backlog} readings queued on the broker: "
        f"{duplicates(good)} duplicates among {len(good)} landed readings"
    )


class BridgeProcess:
    """``python -m airpath.sensors.mqtt`` in a subprocess; its JSON stats lines are read
    as they come (so its stdout never fills up), its log goes to ``log``."""

    def __init__(self, broker: Mosquitto, land: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "airpath.sensors.mqtt", str(land),
                 "--host", "127.0.0.1", "--port", str(broker.port), "--client-id", "crash"],
                stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        self.stats: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stats.append(json.loads(line))

    def wait_subscribed(self, timeout_s: float) -> None:
        def ready() -> bool:
            return any(s["subscribed"] for s in self.stats) or self.proc.poll() is not None

        wait_until(ready, timeout_s, "the bridge process to subscribe")
        assert self.proc.poll() is None, f"bridge exited: {self.log.read_text()}"

    def close(self, grace_s: float = 0.0) -> int:
        """Give it ``grace_s`` to exit, then kill it; reap it and close its pipe."""
        try:
            code = self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


def test_bridge_killed_mid_stream_loses_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    land, log = tmp_path / "landing", tmp_path / "bridge.log"
    readings = make_readings(3000, "crash")
    publisher = Publisher(broker.port, readings, chunk=50, pace_s=0.02)
    first = BridgeProcess(broker, land, log)
    second: BridgeProcess | None = None
    try:
        first.wait_subscribed(30)
        publisher.start()
        wait_until(lambda: n_lines(land) >= 500, 20, "500 landed lines")
        # Kill while the bridge holds received but unlanded messages (acknowledged by
        # the broker to the publisher, not yet by the bridge to the broker).
        wait_until(lambda: publisher.sent - n_lines(land) >= 150, 20, "a backlog")
        first.proc.send_signal(signal.SIGKILL)
        assert first.close(10) == -signal.SIGKILL
        killed_at = publisher.sent
        assert killed_at < len(readings), "the publisher finished before the kill"
        wait_until(lambda: publisher.sent >= killed_at + 500, 20, "publishing while down")
        while_down = {key(r) for r in readings[killed_at : publisher.sent]}
        second = BridgeProcess(broker, land, log)  # same client id: same session
        second.wait_subscribed(30)
        publisher.finish(60)
        good = wait_all_landed(land, {key(r) for r in readings}, 30)
        second.proc.send_signal(signal.SIGTERM)  # a clean stop: land, ack, disconnect
        assert second.close(20) == 0
    finally:
        first.close()
        if second is not None:
            second.close()
    assert while_down <= {key(r) for r in good}
    assert "session present: True" in log.read_text()  # the broker kept the session
    # the restarted bridge swept what the killed one had half written, and left nothing
    assert [p.name for p in land.iterdir() if p.name.startswith(".")] == []
    print(
        f"\nbridge SIGKILL: {len(while_down)} readings published while it was down; "
        f"{duplicates(good)} duplicates among {len(good)} landed readings"
    )


def test_malformed_payloads_land_as_rejectable_lines(broker: Mosquitto, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    valid = [json.dumps(reading_to_json(r)) for r in make_readings(6, "ok")]
    binary = b"\xff\xfe\x00 binary"
    payloads: list[str | bytes] = [
        valid[0],
        json.dumps(json.loads(valid[1]), indent=2),  # pretty-printed: still one reading
        f"[{valid[2]}, {valid[3]}, 42]",  # 2 readings and a number
        f"{valid[4]}\n{{oops\n{valid[5]}\n",  # JSON lines with one broken line
        binary,
        b"",
        "hello\nworld",
        "{'sensor_id': 'single quotes'}",
    ]
    bridge = MqttBridge(config(broker, "bridge-malformed"), LandingWriter(land))
    bridge.start()
    try:
        assert bridge.wait_subscribed(10)
        publish_readings("127.0.0.1", broker.port, TOPIC, payloads)
        wait_until(lambda: bridge.stats().acks_sent >= len(payloads), 20, "all acks")
    finally:
        bridge.stop()
    good, bad = landed(land)
    assert sorted(map(key, good)) == sorted(map(key, make_readings(6, "ok")))
    assert all(r.reason is RejectReason.MALFORMED for r in bad)
    raw = [json.loads(r.payload) for r in bad]
    assert [r.get("_raw", r.get("_raw_base64")) for r in raw if isinstance(r, dict)] == [
        "{oops",
        base64.b64encode(binary).decode(),
        "",
        "hello",
        "world",
        "{'sensor_id': 'single quotes'}",
    ]
    assert [r for r in raw if not isinstance(r, dict)] == [42]
    assert all(r["_source"].startswith(f"mqtt:{TOPIC}") for r in raw if isinstance(r, dict))


def test_nothing_is_acknowledged_before_it_lands(broker: Mosquitto, tmp_path: Path) -> None:
    readings = make_readings(100, "noack")
    broken = MemoryLanding()
    broken.failing = True
    first = MqttBridge(config(broker, "bridge-noack"), broken)
    first.start()
    try:
        assert first.wait_subscribed(10)
        publish_readings("127.0.0.1", broker.port, TOPIC, readings)
        wait_until(lambda: first.stats().landing_errors >= 2, 20, "failed landings")
    finally:
        first.stop()  # its last flush fails too: it leaves with nothing acknowledged
    assert first.stats().messages_received >= 100
    assert first.stats().acks_sent == 0
    land = tmp_path / "landing"
    second = MqttBridge(config(broker, "bridge-noack"), LandingWriter(land))
    second.start()
    try:
        good = wait_all_landed(land, {key(r) for r in readings}, 20)
    finally:
        second.stop()
    assert Counter(good) == Counter(readings)


def test_bad_settings_and_an_absent_broker_are_named_errors() -> None:
    for bad in ({"qos": 0}, {"qos": 2}, {"client_id": ""}, {"max_batch": 0},
                {"max_batch": 70000}, {"flush_interval_s": 0}, {"port": 0}):  # fmt: skip
        with pytest.raises(PipelineConfigError):
            MqttConfig(**bad)  # type: ignore[arg-type]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = MqttConfig(host="127.0.0.1", port=s.getsockname()[1])
        with pytest.raises(SourceError, match="cannot reach MQTT broker"):
            MqttBridge(closed, MemoryLanding()).start()
