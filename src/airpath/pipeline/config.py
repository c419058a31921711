"""Settings of the streaming job, with the defaults and why, in one place.

Entry points (the CLI, the demo, tests) build a :class:`StreamConfig` and pass it in;
nothing reads settings from a global. Paths may be local directories or, for the lake and
checkpoints on a cluster, URIs that Spark and pyarrow both understand (``s3a://`` for
Spark is ``s3://`` for pyarrow; see ``deploy/``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from airpath.errors import PipelineConfigError

InputFormat = Literal["jsonl", "csv", "parquet", "kafka"]
FieldCompute = Literal["spark", "driver"]


@dataclass(frozen=True)
class StreamConfig:
    """Where the job reads and writes, and how it batches.

    * ``landing`` — directory the readings arrive in (files appear by atomic rename);
    * ``work`` — the job's own directory: ``checkpoint/`` (Spark offsets, commits and the
      RocksDB state), ``model/`` (the estimator state after each batch), ``lake/``
      (readings and fields, Parquet by date/hour), ``deadletters/`` and, unless
      ``field_store`` says otherwise, ``fields/`` (the local field store);
    * ``field_store`` — ``None`` for ``work/fields``, a directory, or ``redis://…``.
    """

    network: Path
    landing: Path
    work: Path
    field_store: str | None = None
    input_format: InputFormat = "jsonl"
    master: str = "local[2]"
    trigger_s: float = 1.0  # how often a micro-batch starts when data waits
    max_files_per_trigger: int | None = None  # None: all files present at the trigger
    # 10 min: a sensor's readings arrive within minutes (MQTT bridge flushes, phones that
    # upload when back online); later readings are dead-lettered, see air/gate.py.
    watermark_delay_s: float = 600.0
    max_age: dt.timedelta = dt.timedelta(hours=24)
    clock: Literal["wall", "event"] = "wall"
    horizons_min: tuple[float, ...] = (0.0, 15.0, 30.0, 60.0)
    tile_deg: float = 0.01  # ~1 km: the unit of spatial partitioning (matching, field)
    field_compute: FieldCompute = "spark"
    shuffle_partitions: int = 2  # one per core on a laptop; executors × cores on a cluster
    # Sensors are hashed into this many state keys (see pipeline/processor.py); fixed for
    # the life of a checkpoint, since it decides where each sensor's memory lives.
    sensor_buckets: int = 32
    metrics_port: int | None = None  # Prometheus endpoint of the job; None: off
    spark_conf: Mapping[str, str] = field(default_factory=dict)  # overrides, applied last
    keep_model_states: int = 3
    # format "kafka": the connector jar is in the container image (deploy/Dockerfile),
    # not in the PyPI wheel; each record's value is one reading as JSON.
    # The registry `airpath train` writes to; a newer version is adopted between batches.
    models: Path | None = None
    kafka_bootstrap: str | None = None
    kafka_topic: str = "airpath.readings"
    kafka_max_offsets_per_trigger: int | None = None

    def __post_init__(self) -> None:
        if self.trigger_s < 0:
            raise PipelineConfigError(f"trigger interval must be >= 0 s, got {self.trigger_s}")
        if self.watermark_delay_s <= 0:
            raise PipelineConfigError("the watermark delay must be positive")
        if not self.horizons_min or self.horizons_min[0] != 0.0:
            raise PipelineConfigError(f"horizons must start at 0, got {self.horizons_min}")
        if not 0.0005 <= self.tile_deg <= 1.0:
            raise PipelineConfigError(f"tile size must be 0.0005–1 degree, got {self.tile_deg}")
        if not 1 <= self.sensor_buckets <= 4096:
            raise PipelineConfigError(f"sensor buckets must be 1–4096, got {self.sensor_buckets}")
        if self.input_format not in ("jsonl", "csv", "parquet", "kafka"):
            raise PipelineConfigError(f"unknown input format {self.input_format!r}")
        if self.input_format == "kafka" and not self.kafka_bootstrap:
            raise PipelineConfigError("the kafka source needs the brokers (kafka_bootstrap)")
        if self.clock not in ("wall", "event"):
            raise PipelineConfigError(f"clock must be 'wall' or 'event', got {self.clock!r}")

    @property
    def checkpoint(self) -> Path:
        return self.work / "checkpoint"

    @property
    def model_dir(self) -> Path:
        return self.work / "model"

    @property
    def lake(self) -> Path:
        return self.work / "lake"

    @property
    def deadletters(self) -> Path:
        return self.work / "deadletters"

    @property
    def field_store_location(self) -> str:
        return self.field_store or str(self.work / "fields")
