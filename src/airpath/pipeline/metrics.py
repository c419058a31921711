"""Prometheus metrics of the streaming job, on their own registry.

Names follow Prometheus conventions (base units, ``_total`` counters). Spark's own
metrics (executors, state store, streaming sources) are served by Spark's
``PrometheusServlet`` on the UI port when metrics are on; see :mod:`.session`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class JobMetrics:
    """Every metric the job exports; ``serve(port)`` starts the HTTP endpoint."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.batch_seconds = Histogram(
            "airpath_batch_duration_seconds",
            "Wall time of the job's per-batch work (foreachBatch)",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.rows_in = Counter("airpath_input_rows_total", "Rows read from the source", registry=r)
        self.rows_valid = Counter("airpath_valid_rows_total", "Readings accepted", registry=r)
        self.rows_rejected = Counter(
            "airpath_rejected_rows_total", "Readings dead-lettered", ["reason"], registry=r
        )
        self.rows_unaccounted = Gauge(
            "airpath_batch_rows_unaccounted",
            "Rows in minus valid minus rejected for the last batch (must be 0)",
            registry=r,
        )
        self.input_rate = Gauge(
            "airpath_input_rows_per_second", "Spark's input rate, last batch", registry=r
        )
        self.processed_rate = Gauge(
            "airpath_processed_rows_per_second", "Spark's processing rate, last batch", registry=r
        )
        self.watermark_lag = Gauge(
            "airpath_watermark_lag_seconds",
            "Newest event time minus the event-time watermark",
            registry=r,
        )
        self.freshness = Gauge(
            "airpath_field_freshness_seconds",
            "Publish time minus the newest event time used, last field",
            registry=r,
        )
        self.field_published = Gauge(
            "airpath_field_published_timestamp_seconds",
            "When the last field was published",
            registry=r,
        )
        self.publish_failures = Counter(
            "airpath_field_publish_failures_total", "Field publications that failed", registry=r
        )
        self.store_up = Gauge(
            "airpath_field_store_up", "1 if the last publication reached the store", registry=r
        )
        self.prequential = Gauge(
            "airpath_model_prequential_rmse",
            "Forecast RMSE of the city-wide level (log units), scored before learning",
            ["pollutant", "horizon_min"],
            registry=r,
        )
        self.drift_alarms = Counter(
            "airpath_drift_alarms_total",
            "Drift detections (each triggers a re-fit)",
            ["pollutant"],
            registry=r,
        )
        self.last_batch = Gauge("airpath_last_batch_id", "Last batch processed", registry=r)

    def serve(self, port: int) -> Any:
        """Serve ``/metrics`` on ``port`` (0 picks a free one); returns the server."""
        server, _thread = start_http_server(port, addr="0.0.0.0", registry=self.registry)
        return server
