"""Operating the deployment: apply, status, logs, delete — over a :class:`KubeClient`.

``status`` reads what the Spark Operator records on its resources (application state,
error message, driver pod, executor states; for the scheduled job its schedule state
and last run) and then looks at the pods themselves, because the operator reports a
driver that never starts as merely ``SUBMITTED``: the reason (an image that cannot be
pulled, a pod too large for any node, an OOM kill) is on the pod (:mod:`.diagnose`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airpath.deploy.diagnose import pod_line, pod_problems
from airpath.deploy.errors import ClusterError
from airpath.deploy.kube import KINDS, KubeClient
from airpath.deploy.pods import DRIVER_CONTAINER
from airpath.deploy.resolve import Plan

APP_LABEL = "sparkoperator.k8s.io/app-name"  # the operator's label on driver and executors
COMPONENT_LABEL = "app.kubernetes.io/component"
KEEP_UNLESS_PURGE = ("PersistentVolumeClaim", "Namespace", "PriorityClass")


def select(
    manifests: Sequence[Mapping[str, Any]], components: Sequence[str] | None
) -> list[Mapping[str, Any]]:
    """The manifests of the given components (all when ``None``)."""
    if not components:
        return list(manifests)
    wanted = set(components)
    return [m for m in manifests if m["metadata"].get("labels", {}).get(COMPONENT_LABEL) in wanted]


def _name(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def apply_all(
    client: KubeClient,
    manifests: Sequence[Mapping[str, Any]],
    *,
    force: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """Server-side apply each manifest in order; one line per object."""
    lines = []
    for obj in manifests:
        result = client.apply(obj, force=force, dry_run=dry_run)
        generation = result.get("metadata", {}).get("generation")
        suffix = " (server dry run)" if dry_run else ""
        lines.append(
            f"applied {_name(obj)}" + (f" (generation {generation})" if generation else "") + suffix
        )
    return lines


def delete_all(
    client: KubeClient, manifests: Sequence[Mapping[str, Any]], *, purge: bool = False
) -> list[str]:
    """Delete in reverse apply order. The work volume (checkpoints, lake), the namespace
    and the cluster-wide priority classes stay unless ``purge``."""
    lines = []
    for obj in reversed(manifests):
        kind = KINDS[obj["kind"]]
        if obj["kind"] in KEEP_UNLESS_PURGE and not purge:
            lines.append(f"kept {_name(obj)} (--purge deletes it)")
            continue
        gone = client.delete(kind, obj["metadata"]["name"], obj["metadata"].get("namespace"))
        lines.append(f"deleted {_name(obj)}" if gone else f"{_name(obj)} already gone")
    return lines


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    healthy: bool = True

    def add(self, line: str, *, ok: bool = True) -> None:
        self.lines.append(line)
        self.healthy = self.healthy and ok


def _state(app: Mapping[str, Any]) -> str:
    return str(app.get("status", {}).get("applicationState", {}).get("state") or "NEW")


def _spark_app(
    client: KubeClient, report: Report, app: Mapping[str, Any], ns: str, *, running_ok: bool
) -> None:
    name = app["metadata"]["name"]
    status = app.get("status", {})
    state = _state(app)
    attempts = status.get("executionAttempts")
    report.add(
        f"SparkApplication {name}: {state}" + (f" (attempt {attempts})" if attempts else ""),
        ok=(state == "RUNNING") if running_ok else state not in ("FAILED", "SUBMISSION_FAILED"),
    )
    error = status.get("applicationState", {}).get("errorMessage")
    if error:
        report.add(f"  error: {error.strip().splitlines()[0]}", ok=False)
    executors = Counter(status.get("executorState", {}).values())
    if executors:
        report.add("  executors: " + ", ".join(f"{n} {s}" for s, n in sorted(executors.items())))
    for pod in client.list(KINDS["Pod"], ns, label_selector=f"{APP_LABEL}={name}"):
        role = pod["metadata"].get("labels", {}).get("spark-role", "pod")
        problems = pod_problems(pod)
        report.add(f"  {role} {pod_line(pod)}", ok=not problems)
        for problem in problems:
            report.add(f"    ✗ {problem}", ok=False)


def _deployment(client: KubeClient, report: Report, name: str, ns: str) -> None:
    dep = client.get(KINDS["Deployment"], name, ns)
    if dep is None:
        report.add(f"Deployment {name}: not found (not applied?)", ok=False)
        return
    status = dep.get("status", {})
    want = status.get("replicas", dep.get("spec", {}).get("replicas", 1))
    ready = status.get("readyReplicas", 0)
    report.add(f"Deployment {name}: {ready}/{want} ready", ok=ready >= 1 and ready >= want)
    selector = dep["spec"]["selector"].get("matchLabels", {})
    label = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    for pod in client.list(KINDS["Pod"], ns, label_selector=label):
        for problem in pod_problems(pod):
            report.add(f"  ✗ {pod['metadata']['name']}: {problem}", ok=False)


def status_report(client: KubeClient, plan: Plan) -> Report:
    """The state of every airpath workload, with the reason when something is stuck."""
    ns = plan.namespace
    report = Report()
    app = client.get(KINDS["SparkApplication"], plan.stream.name, ns)
    if app is None:
        report.add(f"SparkApplication {plan.stream.name}: not found (not applied?)", ok=False)
    else:
        _spark_app(client, report, app, ns, running_ok=True)
    if plan.train is not None:
        sched = client.get(KINDS["ScheduledSparkApplication"], plan.train.name, ns)
        if sched is None:
            report.add(f"ScheduledSparkApplication {plan.train.name}: not found", ok=False)
        else:
            st = sched.get("status", {})
            report.add(
                f"ScheduledSparkApplication {plan.train.name}: {st.get('scheduleState', 'NEW')}, "
                f"last run {st.get('lastRun', '-')}, next run {st.get('nextRun', '-')}",
                ok=st.get("scheduleState") != "FailedValidation",
            )
            last = st.get("lastRunName")
            run = client.get(KINDS["SparkApplication"], last, ns) if last else None
            if run is not None:
                _spark_app(client, report, run, ns, running_ok=False)
    _deployment(client, report, plan.config.router.name, ns)
    if plan.config.cluster.redis.deploy:
        _deployment(client, report, "airpath-redis", ns)
    return report


def wait_healthy(
    client: KubeClient,
    plan: Plan,
    timeout_s: float,
    *,
    interval_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Poll :func:`status_report` until healthy or ``timeout_s`` passes."""
    deadline = clock() + timeout_s
    while True:
        report = status_report(client, plan)
        if report.healthy or clock() >= deadline:
            return report
        sleep(interval_s)


def driver_logs(
    client: KubeClient,
    plan: Plan,
    *,
    job: str = "stream",
    tail: int | None = None,
    previous: bool = False,
) -> str:
    """The driver's log of the streaming job, or of the training job's last run."""
    ns = plan.namespace
    if job == "stream":
        name = plan.stream.name
    else:
        if plan.train is None:
            raise ClusterError("training is disabled in this overlay (train.enabled: false)")
        sched = client.get(KINDS["ScheduledSparkApplication"], plan.train.name, ns)
        name = (sched or {}).get("status", {}).get("lastRunName", "")
        if not name:
            raise ClusterError(f"{plan.train.name} has not run yet")
    app = client.get(KINDS["SparkApplication"], name, ns)
    if app is None:
        raise ClusterError(f"SparkApplication {name} not found in namespace {ns}")
    pod = app.get("status", {}).get("driverInfo", {}).get("podName") or f"{name}-driver"
    text = client.logs(pod, ns, container=DRIVER_CONTAINER, tail_lines=tail, previous=previous)
    if text is None:
        raise ClusterError(f"driver pod {pod} does not exist yet (application state {_state(app)})")
    return text
