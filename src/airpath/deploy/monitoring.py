"""Monitoring for the Prometheus Operator (``monitoring.coreos.com/v1``) and Grafana.

* a **PodMonitor** for the streaming driver: airpath's own metrics on the ``metrics``
  port (``airpath stream --metrics-port``), and Spark's ``PrometheusServlet`` on the UI
  port (``/metrics/prometheus`` for the driver's sources, ``/metrics/executors/prometheus``
  for executor summaries, from ``spark.ui.prometheus.enabled``). A PodMonitor, not a
  ServiceMonitor, because the driver's Service is created by Spark per submission;
* a **ServiceMonitor** for the router Service;
* a **PrometheusRule** with the alerts an operator acts on: a stale field, a dead-letter
  spike, micro-batches slower than the trigger interval (the job falls behind), the field
  store unreachable, readings lost between input and output, slow routes;
* the **Grafana dashboard** in a ConfigMap labelled for the Grafana sidecar.

Thresholds come from the configuration (the trigger interval, the staleness limit).
"""

from __future__ import annotations

import json
from typing import Any

from airpath.deploy.dashboard import dashboard
from airpath.deploy.resolve import Plan

# Exported by airpath.pipeline.metrics.JobMetrics (a test checks the two lists agree).
JOB_METRICS = (
    "airpath_batch_duration_seconds",
    "airpath_input_rows_total",
    "airpath_valid_rows_total",
    "airpath_rejected_rows_total",
    "airpath_batch_rows_unaccounted",
    "airpath_input_rows_per_second",
    "airpath_processed_rows_per_second",
    "airpath_watermark_lag_seconds",
    "airpath_field_freshness_seconds",
    "airpath_field_published_timestamp_seconds",
    "airpath_field_publish_failures_total",
    "airpath_field_store_up",
    "airpath_model_prequential_rmse",
    "airpath_drift_alarms_total",
    "airpath_last_batch_id",
)
API_METRICS = (
    "airpath_http_request_duration_seconds",
    "airpath_routes_total",
    "airpath_field_age_seconds",
)
API_VERSION = "monitoring.coreos.com/v1"


def _meta(plan: Plan, name: str) -> dict[str, Any]:
    labels = plan.labels("monitoring", name) | dict(plan.config.cluster.monitoring.selector_labels)
    return {"name": name, "namespace": plan.namespace, "labels": labels}


def pod_monitor(plan: Plan) -> dict[str, Any]:
    stream = plan.labels("stream", plan.stream.name)
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitor",
        "metadata": _meta(plan, f"{plan.stream.name}-driver"),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/component": stream["app.kubernetes.io/component"],
                    "app.kubernetes.io/part-of": stream["app.kubernetes.io/part-of"],
                    "spark-role": "driver",
                }
            },
            "namespaceSelector": {"matchNames": [plan.namespace]},
            "podMetricsEndpoints": [
                {"port": "metrics", "path": "/metrics", "interval": "15s"},
                {"port": "spark-ui", "path": "/metrics/prometheus", "interval": "30s"},
                {"port": "spark-ui", "path": "/metrics/executors/prometheus", "interval": "30s"},
            ],
        },
    }


def service_monitor(plan: Plan) -> dict[str, Any]:
    r = plan.config.router
    labels = plan.labels("router", r.name)
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _meta(plan, r.name),
        "spec": {
            "selector": {
                "matchLabels": {
                    k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of")
                }
            },
            "namespaceSelector": {"matchNames": [plan.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        },
    }


def alert_rules(plan: Plan, trigger_s: float) -> list[dict[str, Any]]:
    """The alerting rules (also written to ``deploy/alerts/`` for reference)."""
    m = plan.config.cluster.monitoring
    ns = f'namespace="{plan.namespace}"'
    stale = m.stale_field_after_s
    batch_p90 = (
        "histogram_quantile(0.9, sum by (le) "
        f"(rate(airpath_batch_duration_seconds_bucket{{{ns}}}[10m])))"
    )

    def rule(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity},
            "annotations": {"summary": summary},
        }

    return [
        rule("AirpathFieldStale",
             f"time() - max(airpath_field_published_timestamp_seconds{{{ns}}}) > {stale}",
             "2m", "critical",
             f"No pollution field published for over {stale} s: routes use stale air"),
        rule("AirpathStreamNotReporting", f"absent(airpath_last_batch_id{{{ns}}})", "10m",
             "critical", "The streaming job exports no metrics (driver down or restarting)"),
        rule("AirpathRouterFieldStale", f"max(airpath_field_age_seconds{{{ns}}}) > {stale}",
             "5m", "warning", f"A router serves a field older than {stale} s"),
        rule("AirpathDeadLetterSpike",
             f"sum(rate(airpath_rejected_rows_total{{{ns}}}[10m])) / "
             f"clamp_min(sum(rate(airpath_input_rows_total{{{ns}}}[10m])), 1e-9) "
             f"> {m.dead_letter_ratio:g}",
             "10m", "warning",
             f"Over {m.dead_letter_ratio:.0%} of readings dead-lettered (a broken feed?)"),
        rule("AirpathBatchSlowerThanTrigger", f"{batch_p90} > {trigger_s:g}", "15m", "warning",
             f"p90 micro-batch time exceeds the {trigger_s:g} s trigger: the job falls behind"),
        rule("AirpathFieldStoreDown", f"min(airpath_field_store_up{{{ns}}}) == 0", "5m",
             "critical", "The streaming job cannot publish to the field store"),
        rule("AirpathFieldPublishFailures",
             f"increase(airpath_field_publish_failures_total{{{ns}}}[15m]) > 3", "0m", "warning",
             "Field publications are failing"),
        rule("AirpathRowsUnaccounted", f"max(airpath_batch_rows_unaccounted{{{ns}}}) != 0",
             "15m", "critical", "Readings lost between input and valid + rejected"),
        rule("AirpathRouteLatencyHigh",
             "histogram_quantile(0.95, sum by (le) "
             f"(rate(airpath_http_request_duration_seconds_bucket{{{ns}}}[10m]))) "
             f"> {m.route_latency_p95_s:g}",
             "10m", "warning", f"Route p95 latency above {m.route_latency_p95_s:g} s"),
        rule("AirpathDriftAlarms", f"sum(increase(airpath_drift_alarms_total{{{ns}}}[1h])) > 3",
             "0m", "info", "Frequent drift re-fits: sensors or the city changed"),
    ]  # fmt: skip


def prometheus_rule(plan: Plan, trigger_s: float) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _meta(plan, "airpath"),
        "spec": {"groups": [{"name": "airpath", "rules": alert_rules(plan, trigger_s)}]},
    }


def dashboard_configmap(plan: Plan, trigger_s: float) -> dict[str, Any]:
    m = plan.config.cluster.monitoring
    meta = _meta(plan, "airpath-grafana-dashboard")
    meta["labels"][m.dashboard_label] = m.dashboard_label_value
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {"airpath.json": json.dumps(dashboard(trigger_s), indent=2, ensure_ascii=False)},
    }


def monitoring_resources(plan: Plan, trigger_s: float) -> list[dict[str, Any]]:
    if not plan.config.cluster.monitoring.enabled:
        return []
    return [
        pod_monitor(plan),
        service_monitor(plan),
        prometheus_rule(plan, trigger_s),
        dashboard_configmap(plan, trigger_s),
    ]


def reference_files(plan: Plan, trigger_s: float) -> dict[str, str]:
    """The dashboard and the alert rules as plain files, for a Grafana or a Prometheus not
    run by the operators (``deploy/dashboards/``, ``deploy/alerts/``; a test keeps them
    equal to what the prod overlay renders)."""
    from airpath.deploy._yaml import dump

    rules = {"groups": [{"name": "airpath", "rules": alert_rules(plan, trigger_s)}]}
    return {
        "dashboards/airpath.json": json.dumps(dashboard(trigger_s), indent=2, ensure_ascii=False)
        + "\n",
        "alerts/airpath-rules.yaml": dump(rules),
    }


def write_reference(out_dir: str) -> None:
    """Regenerate ``deploy/dashboards`` and ``deploy/alerts`` from the prod overlay."""
    from pathlib import Path

    from airpath.deploy.rendering import duration_s, render

    rendered = render("prod")
    trigger_s = duration_s(rendered.config.stream.trigger, "stream.trigger")
    for name, text in reference_files(rendered.plan, trigger_s).items():
        path = Path(out_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
