"""The Spark session of airpath jobs: every setting we rely on, set in one function.

What and why:

* ``spark.pyspark.python`` is this interpreter, so workers import the same airpath;
* the RocksDB state store with changelog checkpointing: per-sensor state lives off the
  JVM heap and each batch uploads only a changelog, not a snapshot (Spark's guidance
  for large state; `Structured Streaming guide`_, "RocksDB state store");
* few shuffle partitions: the default 200 is for clusters; each costs a task per batch;
* the Prometheus servlet on the UI port when metrics are asked for
  (``spark.ui.prometheus.enabled``, ``/metrics/executors/prometheus`` and the
  ``PrometheusServlet`` sink at ``/metrics/prometheus``).

.. _Structured Streaming guide:
   https://spark.apache.org/docs/latest/streaming/apis-on-dataframes-and-datasets.html
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def spark_settings(
    *,
    app_name: str,
    master: str,
    shuffle_partitions: int = 2,
    metrics: bool = False,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The Spark configuration of an airpath job (overrides applied last)."""
    conf = {
        "spark.app.name": app_name,
        "spark.master": master,
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB_PROVIDER,
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "true" if metrics else "false",
    }
    if master.startswith("local"):
        # Bind and advertise loopback: large task results travel through the block
        # manager, which must be reachable at the address the driver advertises.
        conf |= {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}
    if metrics:
        conf |= {
            "spark.ui.prometheus.enabled": "true",
            "spark.metrics.conf.*.sink.prometheusServlet.class": (
                "org.apache.spark.metrics.sink.PrometheusServlet"
            ),
            "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
            "spark.sql.streaming.metricsEnabled": "true",
        }
    conf |= dict(overrides or {})
    return conf


def build_session(settings: Mapping[str, str]) -> Any:
    """A SparkSession with ``settings`` (starts the JVM on first use)."""
    from pyspark.sql import SparkSession

    # Workers are started from the JVM, which reads the interpreter from the environment.
    os.environ.setdefault("PYSPARK_PYTHON", settings.get("spark.pyspark.python", sys.executable))
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
