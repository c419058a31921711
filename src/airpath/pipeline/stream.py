"""``airpath stream``: the Structured Streaming job, wired from the pieces of this package.

Plan of one micro-batch::

    landing files ─► payload + sensor key + event time ─► watermark
      ─► groupBy(sensor).transformWithStateInPandas   (gate: validate, late, duplicate;
                                                       per-sensor state in RocksDB)
      ─► repartition by spatial tile ─► mapInPandas   (match readings to edges)
      ─► foreachBatch                                  (dead letters, lake, model, field
                                                       tiles on the executors, publish)

Sources: a landing directory of JSON lines (default), CSV or Parquet files, which appear by
atomic rename (the MQTT bridge and the HTTP ingest land files the same way). On a cluster
the ``kafka`` source replaces the directory; its connector is baked into the image (see
``deploy/``) and is not needed here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airpath.air.rules import Area
from airpath.errors import AirpathError, PipelineConfigError
from airpath.network.store import load_network
from airpath.pipeline.batch import BatchHandler
from airpath.pipeline.config import StreamConfig
from airpath.pipeline.matching import MATCHED_SCHEMA_EXTRA, match_frames
from airpath.pipeline.metrics import JobMetrics
from airpath.pipeline.processor import OUTPUT_SCHEMA, SensorGateProcessor
from airpath.pipeline.session import build_session, spark_settings
from airpath.serving.snapshot import network_key
from airpath.serving.store import open_store

log = logging.getLogger("airpath.stream")
# How long a stop waits for the running micro-batch: a batch takes seconds, and a
# Kubernetes pod has 30 s between SIGTERM and SIGKILL unless told otherwise.
DRAIN_TIMEOUT_S = 20.0
Progress = Callable[[str], None]

CSV_COLUMNS = (
    "sensor_id string, sensor_kind string, lat double, lon double, time string, "
    "pollutant string, value double, unit string, speed_mps double, heading_deg double"
)


class StreamError(AirpathError):
    """The streaming query stopped with an error (the message says which)."""


@dataclass
class StreamRun:
    """A running (or finished) job: the query, its handler and metrics."""

    spark: Any
    query: Any
    handler: BatchHandler
    metrics: JobMetrics
    listener: Any = None
    metrics_server: Any = None
    owns_spark: bool = False

    def batch_running(self) -> bool:
        """Whether a micro-batch is running now (False once the session is gone)."""
        try:
            return bool(self.query.isActive and self.query.status["isTriggerActive"])
        except Exception:
            return False

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait, up to ``timeout_s``, until no micro-batch is running, so that a stop
        does not cancel one half done; True when idle (or stopped) in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.batch_running():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop the query (and the session, if this run started it); idempotent.

        A batch still running is cancelled: its outputs are idempotent and its offsets
        uncommitted, so the next start runs it again. Its cancellation surfaces in the
        batch function as an error that py4j would log with a traceback; that logger is
        silenced for the stop alone, and one line says what happened instead."""
        proxy_log = logging.getLogger("py4j.clientserver")
        level = proxy_log.level
        proxy_log.setLevel(logging.CRITICAL)
        try:
            if self.batch_running():
                log.warning(
                    "stopping during a micro-batch: it is cancelled and runs again at "
                    "the next start (its outputs are idempotent)"
                )
            with contextlib.suppress(Exception):
                self.query.stop()
        finally:
            proxy_log.setLevel(level)
        if self.listener is not None:
            with contextlib.suppress(Exception):
                self.spark.streams.removeListener(self.listener)
            self.listener = None
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None
        self.handler.store.close()
        if self.owns_spark:
            with contextlib.suppress(Exception):
                self.spark.stop()
            self.owns_spark = False


def raw_readings(spark: Any, config: StreamConfig) -> Any:
    """The source as rows of (payload JSON text, sensor key, event time)."""
    from pyspark.sql import functions as F

    reader = spark.readStream
    if config.input_format == "kafka":
        # Offsets are Spark's own (checkpointed per batch), so a replay reads exactly the
        # records of the batch it replays; needs spark-sql-kafka on the classpath.
        kafka = (
            reader.format("kafka")
            .option("kafka.bootstrap.servers", config.kafka_bootstrap)
            .option("subscribe", config.kafka_topic)
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", "true")
        )
        if config.kafka_max_offsets_per_trigger:
            kafka = kafka.option("maxOffsetsPerTrigger", config.kafka_max_offsets_per_trigger)
        df = kafka.load().select(F.col("value").cast("string").alias("payload"))
        return _keyed(df, config)
    if config.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", config.max_files_per_trigger)
    landing = str(config.landing)
    if config.input_format == "jsonl":
        df = reader.format("text").load(landing).select(F.col("value").alias("payload"))
    elif config.input_format == "csv":
        df = (
            reader.format("csv")
            .option("header", True)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", "_corrupt")
            .schema(CSV_COLUMNS + ", _corrupt string")
            .load(landing)
        )
        cols = [F.col(c.strip().split(" ")[0]) for c in CSV_COLUMNS.split(",")]
        df = df.select(F.coalesce(F.col("_corrupt"), F.to_json(F.struct(*cols))).alias("payload"))
    else:
        # Whole files, decoded here: a file Spark's Parquet reader cannot read (truncated,
        # another schema) becomes one dead-lettered row naming it, instead of failing the
        # query or being skipped unseen.
        df = (
            reader.format("binaryFile")
            .schema("path string, modificationTime timestamp, length long, content binary")
            .option("pathGlobFilter", "*.parquet")
            .load(landing)
            .select("path", "content")
            .mapInPandas(parquet_payloads, "payload string")
        )
    return _keyed(df, config)


def _keyed(df: Any, config: StreamConfig) -> Any:
    """Payload rows with the sensor bucket and event time the stateful step needs."""
    from pyspark.sql import functions as F

    sensor = F.coalesce(F.get_json_object("payload", "$.sensor_id"), F.lit(""))
    event_time = F.get_json_object("payload", "$.time").try_cast("timestamp")
    return df.select(
        F.pmod(F.xxhash64(sensor), F.lit(config.sensor_buckets)).alias("bucket"),
        "payload",
        event_time.alias("event_time"),
    )


def parquet_payloads(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: Parquet files (bytes) → one JSON payload per reading."""
    for frame in frames:
        lines: list[str] = []
        for path, content in zip(frame["path"], frame["content"], strict=True):
            try:
                rows = pq.read_table(io.BytesIO(content)).to_pylist()
            except (pa.ArrowException, OSError, ValueError) as exc:
                lines.append(json.dumps({"_file": str(path), "_error": str(exc)[:500]}))
                continue
            lines.extend(json.dumps(row, default=_json_value) for row in rows)
        yield pd.DataFrame({"payload": lines})


def _json_value(x: object) -> object:
    if isinstance(x, dt.datetime):
        return x.isoformat()
    return str(x)


def build_query(spark: Any, config: StreamConfig, handler: BatchHandler, *, once: bool) -> Any:
    from pyspark.sql import functions as F

    bbox = [float(v) for v in handler.network.manifest["bbox"]]
    processor = SensorGateProcessor(
        area=Area(bbox[0], bbox[1], bbox[2], bbox[3]), max_age=config.max_age, clock=config.clock
    )
    gated = (
        raw_readings(spark, config)
        .withWatermark("event_time", f"{int(config.watermark_delay_s)} seconds")
        .groupBy("bucket")
        .transformWithStateInPandas(processor, OUTPUT_SCHEMA, "Append", "EventTime")
    )
    size = config.tile_deg
    tile = F.concat_ws(
        "_",
        F.floor(F.col("lat") / size).cast("string"),
        F.floor(F.col("lon") / size).cast("string"),
    )
    matched = (
        gated.withColumn("tile", tile)
        .repartition(config.shuffle_partitions, "tile")
        .mapInPandas(
            functools.partial(match_frames, handler.network_path),
            f"{OUTPUT_SCHEMA}, tile string, {MATCHED_SCHEMA_EXTRA}",
        )
        .withColumn("batch_time", F.current_timestamp())
    )
    writer = (
        matched.writeStream.foreachBatch(handler)
        .option("checkpointLocation", str(config.checkpoint))
        .queryName("airpath-stream")
    )
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=f"{config.trigger_s} seconds")
    )
    return writer.start()


def start_stream(config: StreamConfig, *, once: bool = False, spark: Any = None) -> StreamRun:
    """Start the job; ``once`` processes what is in the landing directory, then stops."""
    if config.input_format != "kafka" and not Path(config.landing).is_dir():
        raise PipelineConfigError(f"{config.landing}: landing directory does not exist")
    network = load_network(config.network)
    for d in (config.work, config.lake, config.deadletters):
        Path(d).mkdir(parents=True, exist_ok=True)
    store = open_store(config.field_store_location, network_key(network))
    metrics = JobMetrics()
    owns_spark = spark is None
    if spark is None:
        spark = build_session(
            spark_settings(
                app_name="airpath-stream",
                master=config.master,
                shuffle_partitions=config.shuffle_partitions,
                metrics=config.metrics_port is not None,
                overrides=config.spark_conf,
            )
        )
    handler = BatchHandler(config, network, store, metrics, spark)
    listener = progress_listener(handler, metrics)
    spark.streams.addListener(listener)
    server = metrics.serve(config.metrics_port) if config.metrics_port is not None else None
    try:
        query = build_query(spark, config, handler, once=once)
    except Exception as exc:
        spark.streams.removeListener(listener)
        if server is not None:
            server.shutdown()
            server.server_close()
        if owns_spark:
            spark.stop()
        if config.input_format == "kafka" and "kafka" in str(exc).lower():
            raise PipelineConfigError(
                "the kafka source needs the spark-sql-kafka connector on Spark's classpath "
                "(it is in the container image, see deploy/Dockerfile)"
            ) from exc
        raise
    return StreamRun(spark, query, handler, metrics, listener, server, owns_spark)


def run_stream(
    config: StreamConfig,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    spark: Any = None,
) -> StreamRun:
    """Run until ``stop`` is set, SIGINT/SIGTERM arrives, or (``once``) the input is done."""
    stop = stop or threading.Event()
    logging.getLogger("py4j").setLevel(logging.WARNING)
    run = start_stream(config, once=once, spark=spark)
    say = progress or (lambda _msg: None)
    say(f"streaming from {config.landing} (Spark {run.spark.version}, {config.master})")
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread():
        for s in previous:
            signal.signal(s, lambda *_: stop.set())
    shown = -1
    try:
        while not stop.is_set() and run.query.isActive:
            with contextlib.suppress(Exception):
                run.query.awaitTermination(0.5)
            run.handler.retry_unpublished()
            for outcome in run.handler.outcomes:
                if outcome.batch_id > shown:
                    shown = outcome.batch_id
                    late = (
                        "" if outcome.published or not outcome.field_version else " (unpublished)"
                    )
                    say(
                        f"batch {outcome.batch_id}: {outcome.rows_in} rows, "
                        f"{outcome.valid} valid, field {outcome.field_version or '-'}{late}"
                    )
        error = run.query.exception()
        if error is not None:
            raise StreamError(f"streaming query failed: {str(error).splitlines()[0]}")
    finally:
        if stop.is_set():
            say("stopping: letting the running micro-batch finish")
            run.drain()
        run.stop()
        if threading.current_thread() is threading.main_thread():
            for s, h in previous.items():
                signal.signal(s, h)
    return run


def progress_listener(handler: BatchHandler, metrics: JobMetrics) -> Any:
    """A listener of Spark's per-batch progress → metrics, and the rows-in check (the
    class is made here: importing pyspark is left to the first job)."""
    from pyspark.sql.streaming.listener import StreamingQueryListener

    class Listener(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:
            pass

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            pass

        def onQueryProgress(self, event: Any) -> None:
            p = event.progress
            metrics.input_rate.set(p.inputRowsPerSecond or 0.0)
            metrics.processed_rate.set(p.processedRowsPerSecond or 0.0)
            counted = handler.counts_by_batch.pop(p.batchId, None)
            # Parquet input is counted in files by Spark, in readings by the handler.
            if counted is not None and handler.config.input_format != "parquet":
                missing = int(p.numInputRows) - counted
                metrics.rows_unaccounted.set(missing)
                if missing:
                    log.error(
                        json.dumps(
                            {
                                "event": "rows_unaccounted",
                                "batch_id": p.batchId,
                                "rows_in": p.numInputRows,
                                "rows_out": counted,
                            }
                        )
                    )
            wm, newest = p.eventTime.get("watermark"), p.eventTime.get("max")
            if wm and newest:
                lag = _parse(newest) - _parse(wm)
                metrics.watermark_lag.set(lag)

    return Listener()


def _parse(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
