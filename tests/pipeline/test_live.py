"""The job running continuously against real servers: MQTT in, Redis out.

* readings published over MQTT while the broker restarts reach the lake exactly once
  (the bridge is at least once; the job's per-sensor gate drops the redeliveries);
* with Redis down the job keeps processing, counts the failed publications and publishes
  again when Redis is back, while a subscribed router keeps serving its last field and
  says it is stale.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from airpath import Router
from airpath.air.parsers import parse_jsonl
from airpath.network.store import Network
from airpath.pipeline.config import StreamConfig
from airpath.pipeline.stream import StreamRun, start_stream
from airpath.sensors.landing import LandingWriter
from airpath.sensors.mqtt import MqttBridge, MqttConfig, publish_readings
from airpath.serving import FieldSubscriber, network_key
from airpath.serving.redis_store import RedisFieldStore
from airpath.serving.store import RetryPolicy
from mosquitto import Mosquitto
from servers import RedisServer


def wait_for(what: str, condition: Callable[[], object], run: StreamRun, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        error = run.query.exception()
        assert error is None, str(error)[:2000]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        run.handler.retry_unpublished()
        time.sleep(0.2)


@contextmanager
def streaming(config: StreamConfig, spark: Any) -> Iterator[StreamRun]:
    run = start_stream(config, spark=spark)
    try:
        yield run
    finally:
        run.stop()


def _lake_rows(config: StreamConfig) -> int:
    root = config.lake / "readings"
    return pq.read_table(root).num_rows if root.exists() else 0


def test_mqtt_through_a_broker_restart_lands_every_reading_once(
    spark: Any, helsinki_dir: Path, sim_readings: Path, tmp_path: Path
) -> None:
    readings: list[Any] = []
    for path in sorted(sim_readings.iterdir())[:6]:
        readings += parse_jsonl(path)[0]
    half = len(readings) // 2
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    landing = tmp_path / "landing"
    landing.mkdir()
    bridge = MqttBridge(
        MqttConfig(host="127.0.0.1", port=broker.port, client_id="bridge-live"),
        LandingWriter(landing),
    )
    config = StreamConfig(
        network=helsinki_dir, landing=landing, work=tmp_path / "work", clock="event",
        trigger_s=0.5,
    )  # fmt: skip
    try:
        bridge.start()
        assert bridge.wait_subscribed(10.0)
        with streaming(config, spark) as run:
            publish_readings("127.0.0.1", broker.port, "airpath/readings/a", readings[:half])
            broker.restart()
            publish_readings("127.0.0.1", broker.port, "airpath/readings/b", readings[half:])
            wait_for(
                "every reading to be accepted or dead-lettered",
                lambda: (
                    sum(o.rows_in for o in run.handler.outcomes) >= len(readings)
                    and bridge.stats().lines_landed == sum(o.rows_in for o in run.handler.outcomes)
                ),
                run,
                120.0,
            )
            rows_in = sum(o.rows_in for o in run.handler.outcomes)
            duplicates = sum(o.rejected.get("duplicate", 0) for o in run.handler.outcomes)
    finally:
        bridge.stop()
        broker.stop()
    lake = pq.read_table(config.lake / "readings").to_pandas()
    keys = set(zip(lake["sensor_id"], lake["time"], lake["pollutant"], strict=True))
    assert len(keys) == len(lake)  # nothing counted twice
    assert rows_in == len(readings) + duplicates  # redeliveries only, each dead-lettered
    too_far = sum(o.rejected.get("too_far_from_street", 0) for o in run.handler.outcomes)
    assert len(lake) + too_far == len(readings)  # nothing lost


def test_redis_outage_job_goes_on_router_keeps_last_field(
    spark: Any,
    helsinki: Network,
    helsinki_dir: Path,
    sim_readings: Path,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    files = sorted(sim_readings.iterdir())
    landing = tmp_path / "landing"
    landing.mkdir()
    config = StreamConfig(
        network=helsinki_dir, landing=landing, work=tmp_path / "work", clock="event",
        trigger_s=0.5, field_store=redis_server.url,
    )  # fmt: skip
    key = network_key(helsinki)
    router = Router(helsinki)
    reader = RedisFieldStore(
        redis_server.url, network_key=key, retry=RetryPolicy(attempts=1, base_s=0.05, max_s=0.1)
    )
    subscriber = FieldSubscriber(reader, router, network_key=key, max_age_s=1e9)
    stop = threading.Event()
    try:
        with streaming(config, spark) as run:
            run.handler.store.retry = RetryPolicy(attempts=2, base_s=0.05, max_s=0.1)
            shutil.copy(files[0], landing / files[0].name)
            wait_for("a first field", lambda: any(o.published for o in run.handler.outcomes),
                     run, 120.0)  # fmt: skip
            subscriber.start()
            first = run.handler.outcomes[-1].field_version
            deadline = time.monotonic() + 5
            while router.field.version != first:
                assert time.monotonic() < deadline, "router never got the first field"
                time.sleep(0.05)

            redis_server.stop()
            shutil.copy(files[1], landing / files[1].name)
            wait_for("a batch that could not publish",
                     lambda: any(not o.published and o.field_version
                                 for o in run.handler.outcomes), run, 60.0)  # fmt: skip
            assert run.metrics.store_up._value.get() == 0
            assert run.metrics.publish_failures._value.get() >= 1
            deadline = time.monotonic() + 10
            while not subscriber.status().stale:
                assert time.monotonic() < deadline, "subscriber never noticed the outage"
                time.sleep(0.05)
            assert router.field.version == first  # still serving the last field
            route = router.route((60.178, 24.937), (60.166, 24.952), profile="least_exposure")
            assert route.routes[0].distance_m > 0

            redis_server.start()
            wait_for("the unpublished field to reach Redis",
                     lambda: run.handler.unpublished is None, run, 60.0)  # fmt: skip
            newest = max(o.batch_id for o in run.handler.outcomes if o.field_version)
            deadline = time.monotonic() + 15
            while router.field.version != f"b{newest:010d}":
                assert time.monotonic() < deadline, "router never caught up after the outage"
                time.sleep(0.05)
            assert run.metrics.store_up._value.get() == 1
            assert not subscriber.status().stale
    finally:
        stop.set()
        subscriber.stop()
        reader.close()
