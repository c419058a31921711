"""MQTT → landing bridge: sensor readings from a broker into durable landing files.

Delivery is **at least once** into the landing directory. The bridge subscribes with QoS 1
and acknowledges by hand (``manual_ack``): a message's PUBACK is sent only after the
landing file holding it has been fsynced and renamed into place. A crash or a broker
loss between landing and acknowledging makes the broker deliver the message again, so a
reading can land twice; the streaming job drops exact duplicates by
``(sensor_id, time, pollutant)``, so nothing is counted twice. QoS 2 would not help: paho
keeps an incoming QoS 2 message only in memory after answering PUBREC, so a crash there
would lose it; QoS 1 plus deduplication is the safe pair.

Session: MQTT v5 with ``clean_start=False`` and a session expiry
(:attr:`MqttConfig.session_expiry_s`, a week by default). The broker keeps the
subscription and queues QoS 1 messages while the bridge is away (crash, deploy), and
delivers them when a client with the same ``client_id`` returns; the expiry bounds what
a decommissioned bridge leaves on the broker. v5 also lets the bridge state its
*receive maximum* (= ``max_batch``), asking the broker to keep at most that many
unacknowledged messages in flight: the bridge's flow control. (mosquitto 2.0 overshoots
it once acknowledgements flow, so the buffer may hold more; each file still holds at most
``max_batch`` messages.)

What the broker must provide (mosquitto settings), or messages are lost outside the
bridge's reach: ``persistence true`` (else a broker restart forgets sessions and queued
messages) and ``max_queued_messages`` large enough for the longest outage of the bridge,
or 0 (mosquitto's default of 1000 silently drops the excess for an offline client).

Messages arriving after a session ended (the connection dropped before their batch was
landed) are landed but not acknowledged: their packet ids belong to the old connection,
and the broker sends them again on the new one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from airpath.air.schema import Reading
from airpath.errors import PipelineConfigError, SourceError
from airpath.sensors.landing import Landing, LandingWriter, payload_lines
from airpath.sensors.output import reading_to_json

__all__ = ["BridgeStats", "MqttBridge", "MqttConfig", "publish_readings", "run_bridge"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttConfig:
    """Where the bridge connects and how it batches; defaults suit a local mosquitto."""

    host: str = "localhost"
    port: int = 1883
    topic: str = "airpath/readings/#"
    client_id: str = "airpath-bridge"  # the broker keeps the session under this name
    qos: int = 1  # only 1 is accepted: see the module docstring
    keepalive_s: int = 30
    flush_interval_s: float = 0.2  # longest a message waits in memory before landing
    max_batch: int = 5000  # messages per landing file at most; also the receive maximum
    session_expiry_s: int = 7 * 24 * 3600
    reconnect_min_s: int = 1  # paho's reconnect back-off doubles from min to max
    reconnect_max_s: int = 30

    def __post_init__(self) -> None:
        if self.qos != 1:
            raise PipelineConfigError(f"the MQTT bridge needs qos=1, got {self.qos}")
        if not self.client_id:
            raise PipelineConfigError("the MQTT bridge needs a fixed client_id")
        if not 1 <= self.max_batch <= 65535:
            raise PipelineConfigError(f"max_batch must be in 1..65535, got {self.max_batch}")
        if self.flush_interval_s <= 0 or self.keepalive_s <= 0:
            raise PipelineConfigError("flush_interval_s and keepalive_s must be positive")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise PipelineConfigError("need 0 < reconnect_min_s <= reconnect_max_s")
        if not 0 < self.port < 65536 or self.session_expiry_s <= 0:
            raise PipelineConfigError("port must be in 1..65535, session_expiry_s positive")


@dataclass(frozen=True)
class BridgeStats:
    """Counters since :meth:`MqttBridge.start`."""

    messages_received: int = 0
    lines_landed: int = 0
    files_written: int = 0
    acks_sent: int = 0
    reconnects: int = 0
    landing_errors: int = 0  # failed landing attempts; their messages were retried
    subscribed: bool = False  # the subscription is confirmed on the current connection


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int  # the connection it arrived on; its mid means nothing on another


class MqttBridge:
    """Subscribes to ``config.topic`` and lands every message through ``landing``.

    Two threads: paho's network loop (receives into a buffer) and a flusher (lands the
    buffer every ``flush_interval_s`` or at ``max_batch`` messages, then acknowledges).
    """

    def __init__(self, config: MqttConfig, landing: Landing) -> None:
        self.config = config
        self._landing = landing
        self._cond = threading.Condition()  # guards the buffer and the counters
        self._buffer: list[_Message] = []
        self._stats = BridgeStats()
        self._stopping = False
        self._failing = False  # the last landing failed: retry on the timer only
        # _session changes (under _cond) whenever a connection starts or ends; acks are
        # queued under _cond too, so none can reach a connection its mid is not from.
        self._session = 0
        self._connected = False
        self._subscribed = threading.Event()
        self._flusher: threading.Thread | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        self._client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # ------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("MQTT broker refused the connection: %s", rc)
            return
        with self._cond:
            self._session += 1
            self._connected = True
            if self._session > 1:
                self._count(reconnects=1)
        log.info("connected to MQTT broker (session present: %s)", flags.session_present)
        # Subscribing again is harmless when the session kept the subscription, and
        # restores it when the broker lost the session.
        client.subscribe(self.config.topic, qos=self.config.qos)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        with self._cond:
            if self._connected:
                self._session += 1
            self._connected = False
        self._subscribed.clear()
        if not self._stopping:
            log.warning("lost the MQTT broker (%s); reconnecting", rc)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("MQTT broker refused the subscription to %s: %s", self.config.topic, codes)
        else:
            self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._buffer.append(
                _Message(
                    message.topic, bytes(message.payload), message.mid, message.qos, self._session
                )
            )
            self._count(messages_received=1)
            if len(self._buffer) >= self.config.max_batch:
                self._cond.notify_all()

    # ------------------------------------------------------------ flushing

    def _count(self, **increments: int) -> None:
        s = self._stats
        self._stats = dataclasses.replace(
            s, **{k: getattr(s, k) + v for k, v in increments.items()}
        )

    def _flush(self) -> bool:
        """Land one batch and acknowledge it; False if landing failed (batch kept)."""
        with self._cond:
            n = self.config.max_batch
            batch, self._buffer = self._buffer[:n], self._buffer[n:]
        if not batch:
            return True
        lines = [line for m in batch for line in payload_lines(m.payload, source=f"mqtt:{m.topic}")]
        try:
            if lines:  # a batch of empty arrays lands nothing but is still acknowledged
                self._landing.write_lines(lines)
        except Exception:
            # Nothing landed and nothing acknowledged: keep the batch and try again; the
            # receive maximum limits what the broker sends meanwhile.
            log.exception("could not land %d messages; retrying", len(batch))
            with self._cond:
                self._buffer[:0] = batch
                self._count(landing_errors=1)
            return False
        with self._cond:
            n_acks = 0
            for m in batch:
                if m.qos > 0 and m.session == self._session and self._connected:
                    self._client.ack(m.mid, m.qos)
                    n_acks += 1
            self._count(lines_landed=len(lines), files_written=int(bool(lines)), acks_sent=n_acks)
        return True

    def _due(self) -> bool:
        # After a failed landing only the timer (or stop) triggers: no busy retry loop.
        full = len(self._buffer) >= self.config.max_batch and not self._failing
        return self._stopping or full

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._due, timeout=self.config.flush_interval_s)
                if self._stopping:
                    break
            self._failing = not self._flush()
        # Stopping: land what is buffered now (not what keeps arriving), then leave.
        with self._cond:
            n_batches = -(-len(self._buffer) // self.config.max_batch)
        for _ in range(n_batches):
            if not self._flush():
                return

    # ------------------------------------------------------------ public

    def start(self) -> None:
        """Connect, subscribe and start landing; raises :class:`SourceError` if the
        broker cannot be reached now (later losses are retried forever)."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho's own
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.max_batch
        try:
            self._client.connect(
                self.config.host,
                self.config.port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except OSError as exc:
            raise SourceError(
                f"cannot reach MQTT broker {self.config.host}:{self.config.port}: {exc}"
            ) from exc
        self._client.loop_start()
        self._flusher = threading.Thread(target=self._flush_loop, name="mqtt-flusher")
        self._flusher.start()

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Whether the subscription was confirmed within ``timeout_s``."""
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        """Land and acknowledge what is buffered, disconnect and join both threads.

        The session stays on the broker (no unsubscribe), so messages published while
        the bridge is stopped wait there for its next start.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        # The DISCONNECT queues behind the last PUBACKs, so they reach the broker first.
        self._client.disconnect()
        self._client.loop_stop()

    def run_forever(self, stop_event: threading.Event) -> None:
        """:meth:`start`, wait for ``stop_event``, :meth:`stop`."""
        self.start()
        try:
            while not stop_event.wait(1.0):
                pass
        finally:
            self.stop()

    def stats(self) -> BridgeStats:
        with self._cond:
            return dataclasses.replace(self._stats, subscribed=self._subscribed.is_set())


def run_bridge(
    config: MqttConfig,
    landing_dir: str | Path,
    stop_event: threading.Event,
    progress: Callable[[BridgeStats], None] | None = None,
    *,
    report_every_s: float = 1.0,
) -> BridgeStats:
    """Run the MQTT → landing bridge until ``stop_event`` is set; return the final counts.

    ``config``: broker address, topic filter, client id (keep it fixed: the broker
    keeps the session under it) and batching, see :class:`MqttConfig`.
    ``landing_dir``: the directory the streaming job watches; created if missing;
    temporaries a crashed writer left there are swept first.
    ``stop_event``: set it (from a signal handler, another thread) to land what is
    buffered, acknowledge it and disconnect.
    ``progress``: called in the calling thread with the counters whenever they changed,
    checked every ``report_every_s``.

    Raises :class:`PipelineConfigError` for an unusable landing directory and
    :class:`SourceError` when the broker cannot be reached at start.
    """
    landing = LandingWriter(landing_dir)
    swept = landing.sweep_temporaries()
    if swept:
        log.info("removed %d temporaries of a crashed writer", len(swept))
    bridge = MqttBridge(config, landing)
    bridge.start()
    last: BridgeStats | None = None
    try:
        while not stop_event.wait(report_every_s):
            now = bridge.stats()
            if progress is not None and now != last:
                progress(now)
                last = now
    finally:
        bridge.stop()
    return bridge.stats()


def _payload(item: Reading | str | bytes) -> str | bytes:
    if isinstance(item, str | bytes):
        return item
    return json.dumps(reading_to_json(item), ensure_ascii=False)


def publish_readings(
    host: str,
    port: int,
    topic: str,
    readings_or_lines: Iterable[Reading | str | bytes],
    *,
    qos: int = 1,
    client_id: str | None = None,
    timeout_s: float = 60.0,
) -> int:
    """Publish one message per item and wait until the broker acknowledged every one.

    Readings go out in the simulator's JSON form; text and bytes as given. A broker
    restart in between is ridden out: paho reconnects and sends the unacknowledged
    messages again (so the broker may see one twice). Returns the number of messages;
    raises :class:`SourceError` if they are not all acknowledged within ``timeout_s``.
    """
    payloads = [_payload(item) for item in readings_or_lines]
    done = threading.Condition()
    pending: set[int] = set()
    acked: set[int] = set()  # PUBACKs can arrive before publish() returns the mid

    def on_publish(_c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with done:
            if mid in pending:
                pending.discard(mid)
                done.notify_all()
            else:
                acked.add(mid)

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=True,
    )
    client.on_publish = on_publish
    client.reconnect_delay_set(1, 2)
    client.max_inflight_messages_set(100)
    client.connect_async(host, port, keepalive=30)
    client.loop_start()  # retries the first connection too
    try:
        for payload in payloads:
            info = client.publish(topic, payload, qos=qos)  # queued if disconnected
            with done:
                if info.mid in acked:
                    acked.discard(info.mid)
                else:
                    pending.add(info.mid)
        deadline = time.monotonic() + timeout_s
        with done:
            while pending:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    raise SourceError(
                        f"MQTT broker {host}:{port} acknowledged {len(payloads) - len(pending)}"
                        f" of {len(payloads)} messages within {timeout_s} s"
                    )
                done.wait(left_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(payloads)


def _main(argv: list[str] | None = None) -> int:
    """A bare bridge process (used by the crash tests); prints its counters as JSON."""
    parser = argparse.ArgumentParser(prog="python -m airpath.sensors.mqtt")
    parser.add_argument("landing_dir")
    parser.add_argument("--host", default=MqttConfig.host)
    parser.add_argument("--port", type=int, default=MqttConfig.port)
    parser.add_argument("--topic", default=MqttConfig.topic)
    parser.add_argument("--client-id", default=MqttConfig.client_id)
    parser.add_argument("--flush-interval-s", type=float, default=MqttConfig.flush_interval_s)
    args = parser.parse_args(argv)
    config = MqttConfig(
        host=args.host,
        port=args.port,
        topic=args.topic,
        client_id=args.client_id,
        flush_interval_s=args.flush_interval_s,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def show(stats: BridgeStats) -> None:
        print(json.dumps(dataclasses.asdict(stats)), flush=True)

    show(run_bridge(config, args.landing_dir, stop, show, report_every_s=0.1))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sys.exit(_main())
