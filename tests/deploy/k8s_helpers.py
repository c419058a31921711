"""Helpers of the deployment tests (a module of its own: every conftest is "conftest")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airpath.deploy import Rendered

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO.parent / "shared" / "schemas" / "spark-operator"
CRD_FILES = {
    "SparkApplication": "sparkoperator.k8s.io_sparkapplications.yaml",
    "ScheduledSparkApplication": "sparkoperator.k8s.io_scheduledsparkapplications.yaml",
}


def strictify(schema: Any) -> Any:
    """``additionalProperties: false`` on every object that lists ``properties`` and is not
    ``x-kubernetes-preserve-unknown-fields`` — what ``kubectl --validate=strict`` checks
    and the published CRD leaves open (see the schemas README)."""
    if isinstance(schema, dict):
        out = {k: strictify(v) for k, v in schema.items()}
        if (
            "properties" in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in out
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strictify(v) for v in schema]
    return schema


def by_kind(r: Rendered, kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        m
        for m in r.manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


def pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    *,
    phase: str = "Running",
    container: str = "spark-kubernetes-driver",
    ready: bool = True,
    state: dict[str, Any] | None = None,
    last_state: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    memory_limit: str = "2867Mi",
) -> dict[str, Any]:
    """A pod as the kubelet and the scheduler report it."""
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if state is not None or phase == "Running":
        status["containerStatuses"] = [
            {
                "name": container,
                "image": "registry.example.com/airpath/airpath:0.1.0",
                "ready": ready,
                "restartCount": 1 if last_state else 0,
                "state": state or {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                "lastState": last_state or {},
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [{"name": container, "resources": {"limits": {"memory": memory_limit}}}]
        },
        "status": status,
    }


def with_status(obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "status": status}
