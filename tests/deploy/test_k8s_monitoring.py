"""Monitoring: metric names against what the job exports, thresholds, reference files."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from k8s_helpers import REPO, by_kind

from airpath.deploy import Rendered
from airpath.deploy.monitoring import API_METRICS, JOB_METRICS, reference_files
from airpath.deploy.rendering import duration_s
from airpath.pipeline.metrics import JobMetrics

SUFFIXES = ("_bucket", "_count", "_sum")


def _exported_by_the_job() -> set[str]:
    names = set()
    for family in JobMetrics().registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def test_metric_list_matches_the_jobs_registry() -> None:
    assert set(JOB_METRICS) == _exported_by_the_job()


def _metric_names(expr: str) -> set[str]:
    names = set()
    for name in re.findall(r"\bairpath_[a-z0-9_]+", expr):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in API_METRICS + JOB_METRICS:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def _balanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in expr:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack


def _dashboard(r: Rendered) -> dict[str, Any]:
    cm = by_kind(r, "ConfigMap", "airpath-grafana-dashboard")
    return json.loads(cm["data"]["airpath.json"])


def _rules(r: Rendered) -> list[dict[str, Any]]:
    return by_kind(r, "PrometheusRule")["spec"]["groups"][0]["rules"]


def test_every_query_uses_known_metrics_and_parses(rendered: dict[str, Rendered]) -> None:
    known = set(JOB_METRICS) | set(API_METRICS)
    used: set[str] = set()
    exprs = [
        t["expr"] for p in _dashboard(rendered["prod"])["panels"] for t in p.get("targets", [])
    ]
    exprs += [rule["expr"] for rule in _rules(rendered["prod"])]
    for expr in exprs:
        assert _balanced(expr), expr
        names = _metric_names(expr)
        assert names <= known, names - known
        used |= names
    # Everything the job and the API export is on the dashboard or in an alert.
    assert used == known


def test_dashboard_covers_what_operators_watch(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    cm = by_kind(r, "ConfigMap", "airpath-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    titles = " ".join(p["title"].lower() for p in _dashboard(r)["panels"])
    for topic in ("freshness", "rows per second", "batch time", "rejected", "route latency"):
        assert topic in titles
    batch = next(p for p in _dashboard(r)["panels"] if p["title"] == "Batch time")
    assert {"expr": "vector(30)", "legendFormat": "trigger interval", "refId": "D"} in batch[
        "targets"
    ]


def test_alerts_follow_the_configuration(rendered: dict[str, Rendered]) -> None:
    for overlay, trigger in (("dev", "10"), ("prod", "30")):
        rules = {rule["alert"]: rule for rule in _rules(rendered[overlay])}
        assert {
            "AirpathFieldStale",
            "AirpathDeadLetterSpike",
            "AirpathBatchSlowerThanTrigger",
        } <= set(rules)
        assert rules["AirpathBatchSlowerThanTrigger"]["expr"].endswith(f"> {trigger}")
        assert rules["AirpathFieldStale"]["expr"].endswith("> 600")
        ns = rendered[overlay].plan.namespace
        assert f'namespace="{ns}"' in rules["AirpathDeadLetterSpike"]["expr"]
        assert rules["AirpathFieldStale"]["labels"]["severity"] == "critical"


def test_monitors_select_the_driver_and_the_router(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    pod_monitor = by_kind(r, "PodMonitor")
    assert pod_monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pod_monitor["spec"]["selector"]["matchLabels"]["spark-role"] == "driver"
    paths = {(e["port"], e["path"]) for e in pod_monitor["spec"]["podMetricsEndpoints"]}
    assert paths == {
        ("metrics", "/metrics"),
        ("spark-ui", "/metrics/prometheus"),
        ("spark-ui", "/metrics/executors/prometheus"),
    }
    service_monitor = by_kind(r, "ServiceMonitor")
    router_service = by_kind(r, "Service", "airpath-router")
    selector = service_monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= router_service["metadata"]["labels"].items()
    assert (
        service_monitor["spec"]["endpoints"][0]["port"]
        == router_service["spec"]["ports"][0]["name"]
    )


def test_monitoring_can_be_left_out() -> None:
    from airpath.deploy import render

    kinds = {m["kind"] for m in render("dev", sets=["cluster.monitoring.enabled=false"]).manifests}
    assert not kinds & {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def test_reference_files_in_the_repository_are_current(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    expected = reference_files(r.plan, duration_s(r.config.stream.trigger, "trigger"))
    for name, text in expected.items():
        path = REPO / "deploy" / name
        assert path.read_text() == text, (
            f'{path} is stale: regenerate with `python -c "from airpath.deploy.monitoring '
            "import write_reference; write_reference('deploy')\"`"
        )
    rules = yaml.safe_load((REPO / "deploy" / "alerts" / "airpath-rules.yaml").read_text())
    assert rules["groups"][0]["rules"] == _rules(r)
