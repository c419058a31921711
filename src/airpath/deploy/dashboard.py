"""The Grafana dashboard, built in code from the metric names the job and API export.

Rows: field freshness, throughput, batch time (with the trigger interval drawn in, since a
batch slower than the trigger means the job falls behind), rejected readings by reason,
route latency and traffic, and the model's health. Every query reads a ``namespace``
variable so one dashboard serves dev and prod.
"""

from __future__ import annotations

from typing import Any

NS = 'namespace=~"$namespace"'


def _panel(
    pid: int,
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str,
    x: int,
    y: int,
    w: int = 12,
    kind: str = "timeseries",
    description: str = "",
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _row(pid: int, title: str, y: int) -> dict[str, Any]:
    return {"id": pid, "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}  # fmt: skip


def dashboard(trigger_s: float) -> dict[str, Any]:
    """The dashboard JSON (Grafana schema 39) for a job with this trigger interval."""
    quantile = (
        "histogram_quantile({q}, sum by (le) "
        "(rate(airpath_batch_duration_seconds_bucket{{{ns}}}[5m])))"
    )
    latency = (
        "histogram_quantile(0.95, sum by (le, route) "
        f"(rate(airpath_http_request_duration_seconds_bucket{{{NS}}}[5m])))"
    )
    panels = [
        _row(1, "Field freshness", 0),
        _panel(2, "Field age at the router", [
            (f"max(airpath_field_age_seconds{{{NS}}})", "oldest replica"),
            (f"time() - max(airpath_field_published_timestamp_seconds{{{NS}}})",
             "since last publish"),
        ], unit="s", x=0, y=1, description="How old the field is that riders are routed on"),
        _panel(3, "Freshness at publish", [
            (f"max(airpath_field_freshness_seconds{{{NS}}})", "publish − newest reading"),
            (f"max(airpath_watermark_lag_seconds{{{NS}}})", "watermark lag"),
        ], unit="s", x=12, y=1),
        _row(4, "Throughput", 9),
        _panel(5, "Rows per second", [
            (f"sum(rate(airpath_input_rows_total{{{NS}}}[5m]))", "input"),
            (f"sum(rate(airpath_valid_rows_total{{{NS}}}[5m]))", "valid"),
            (f"sum(airpath_processed_rows_per_second{{{NS}}})", "Spark processed/s"),
            (f"sum(airpath_input_rows_per_second{{{NS}}})", "Spark input/s"),
        ], unit="rowsps", x=0, y=10),
        _panel(6, "Batch time", [
            (quantile.format(q="0.5", ns=NS), "p50"),
            (quantile.format(q="0.9", ns=NS), "p90"),
            (quantile.format(q="0.99", ns=NS), "p99"),
            (f"vector({trigger_s:g})", "trigger interval"),
        ], unit="s", x=12, y=10, description="Above the trigger interval the job falls behind"),
        _row(7, "Data quality", 18),
        _panel(8, "Rejected readings by reason", [
            (f"sum by (reason) (rate(airpath_rejected_rows_total{{{NS}}}[5m]))", "{{reason}}"),
        ], unit="rowsps", x=0, y=19),
        _panel(9, "Rows unaccounted in the last batch (must be 0)", [
            (f"max(airpath_batch_rows_unaccounted{{{NS}}})", "unaccounted"),
        ], unit="none", x=12, y=19, kind="stat"),
        _row(10, "Routes", 27),
        _panel(11, "Route latency p95", [(latency, "{{route}}")], unit="s", x=0, y=28),
        _panel(12, "Requests and routes", [
            (f"sum by (status) (rate(airpath_http_request_duration_seconds_count{{{NS}}}[5m]))",
             "HTTP {{status}}"),
            (f"sum by (profile) (rate(airpath_routes_total{{{NS}}}[5m]))", "{{profile}}"),
        ], unit="reqps", x=12, y=28),
        _row(13, "Model and store", 36),
        _panel(14, "Prequential RMSE", [
            (f"max by (pollutant, horizon_min) (airpath_model_prequential_rmse{{{NS}}})",
             "{{pollutant}} +{{horizon_min}} min"),
        ], unit="none", x=0, y=37, w=8),
        _panel(15, "Drift alarms (1 h)", [
            (f"sum by (pollutant) (increase(airpath_drift_alarms_total{{{NS}}}[1h]))",
             "{{pollutant}}"),
        ], unit="none", x=8, y=37, w=8),
        _panel(16, "Field store", [
            (f"min(airpath_field_store_up{{{NS}}})", "store up"),
            (f"sum(increase(airpath_field_publish_failures_total{{{NS}}}[15m]))",
             "publish failures (15 min)"),
            (f"max(airpath_last_batch_id{{{NS}}})", "last batch"),
        ], unit="none", x=16, y=37, w=8, kind="stat"),
    ]  # fmt: skip
    return {
        "uid": "airpath-overview",
        "title": "airpath — live field and routes",
        "tags": ["airpath", "spark"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
                {
                    "name": "namespace",
                    "type": "query",
                    "label": "Namespace",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(airpath_last_batch_id, namespace)",
                    "includeAll": False,
                    "multi": False,
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
        "annotations": {"list": []},
    }
