"""Why a pod is stuck, in one line a person can act on.

The usual reasons a Spark driver or executor never runs, and where Kubernetes says so:

* **image pull** — a container ``waiting`` with ``ErrImagePull``/``ImagePullBackOff``
  (wrong tag, private registry without ``imagePullSecrets``, kind without ``kind load``);
* **unschedulable** — ``PodScheduled=False`` with reason ``Unschedulable``; the scheduler's
  message says what is short ("0/3 nodes are available: 3 Insufficient cpu") or which
  rule failed (taints, affinity, an unbound PersistentVolumeClaim);
* **OOMKilled** — a container ``terminated`` (now or last time) with reason ``OOMKilled``:
  for PySpark usually the Python workers outgrowing ``memoryOverhead``;
* **crash loop**, **missing Secret or ConfigMap** (``CreateContainerConfigError``), and
  **evicted** pods (node memory or disk pressure).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


def _statuses(pod: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    status = pod.get("status", {})
    yield from status.get("initContainerStatuses", [])
    yield from status.get("containerStatuses", [])


def _limit(pod: Mapping[str, Any], container: str) -> str:
    for c in pod.get("spec", {}).get("containers", []):
        if c.get("name") == container:
            return str(c.get("resources", {}).get("limits", {}).get("memory", "?"))
    return "?"


def pod_problems(pod: Mapping[str, Any]) -> list[str]:
    """What keeps ``pod`` from running, one line each (empty when it is fine)."""
    problems: list[str] = []
    status = pod.get("status", {})
    phase = status.get("phase", "Unknown")
    if phase == "Failed" and status.get("reason") == "Evicted":
        return [f"evicted: {status.get('message', '')}".strip()]
    for cond in status.get("conditions", []):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            reason = cond.get("reason", "Unschedulable")
            detail = cond.get("message", "")
            hint = " — a pod larger than any node's free capacity never schedules: airpath k8s size"
            problems.append(
                f"pending, {reason.lower()}: {detail}" + (hint if "Insufficient" in detail else "")
            )
    for cs in _statuses(pod):
        name = cs.get("name", "?")
        state = cs.get("state", {})
        waiting = state.get("waiting")
        if waiting:
            reason = waiting.get("reason", "")
            message = waiting.get("message", "")
            if reason in PULL_REASONS:
                problems.append(
                    f"{name}: image pull failed ({reason}): {message or cs.get('image', '')}"
                )
            elif reason == "CrashLoopBackOff":
                last = cs.get("lastState", {}).get("terminated", {})
                problems.append(
                    f"{name}: crash looping after {cs.get('restartCount', 0)} restarts, last exit "
                    f"{last.get('reason', '?')} (code {last.get('exitCode', '?')})"
                )
            elif reason in ("CreateContainerConfigError", "CreateContainerError"):
                problems.append(f"{name}: cannot create the container: {message}")
        for when, terminated in (
            ("now", state.get("terminated")),
            ("last run", cs.get("lastState", {}).get("terminated")),
        ):
            if terminated and terminated.get("reason") == "OOMKilled":
                problems.append(
                    f"{name}: OOMKilled ({when}) at its {_limit(pod, name)} memory limit — raise "
                    "memory or memoryOverhead (PySpark's Python workers live in the overhead)"
                )
                break
    return problems


def pod_line(pod: Mapping[str, Any]) -> str:
    """``name  phase  ready  restarts`` for a pod, as ``kubectl get pods`` would show it."""
    meta = pod.get("metadata", {})
    status = pod.get("status", {})
    statuses = status.get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    total = len(pod.get("spec", {}).get("containers", [])) or len(statuses)
    phase = status.get("phase", "Unknown")
    return f"{meta.get('name', '?')}  {phase}  {ready}/{total} ready  {restarts} restarts"
