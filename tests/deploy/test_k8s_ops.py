"""apply / status / logs / delete through the official client, on the in-memory cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s_helpers import by_kind, pod, with_status

from airpath.deploy import (
    ClusterError,
    FakeCluster,
    KubeClient,
    KubeconfigError,
    Rendered,
    connect_kubeconfig,
    render,
)
from airpath.deploy.kube import APPLY_PATCH, KINDS
from airpath.deploy.ops import (
    APP_LABEL,
    apply_all,
    delete_all,
    driver_logs,
    select,
    status_report,
    wait_healthy,
)

NS = "airpath"


def _stream_pods(name: str = "airpath-stream") -> dict[str, dict[str, str]]:
    driver = {APP_LABEL: name, "spark-role": "driver"}
    executor = {APP_LABEL: name, "spark-role": "executor"}
    return {"driver": driver, "executor": executor}


def _running(cluster: FakeCluster) -> None:
    """What the operator, the kubelet and the controllers report for a healthy prod."""
    app = cluster.get("SparkApplication", "airpath-stream", NS)
    assert app is not None
    cluster.put(
        with_status(
            app,
            {
                "applicationState": {"state": "RUNNING"},
                "driverInfo": {"podName": "airpath-stream-driver"},
                "executorState": {
                    "airpath-stream-exec-1": "RUNNING",
                    "airpath-stream-exec-2": "RUNNING",
                },
                "executionAttempts": 1,
            },
        ),
        manager="spark-operator",
    )
    labels = _stream_pods()
    cluster.put(pod("airpath-stream-driver", NS, labels["driver"]))
    cluster.put(
        pod("airpath-stream-exec-1", NS, labels["executor"], container="spark-kubernetes-executor")
    )
    for name in ("airpath-router", "airpath-redis"):
        dep = cluster.get("Deployment", name, NS)
        assert dep is not None
        cluster.put(with_status(dep, {"replicas": 3, "readyReplicas": 3}))


@pytest.fixture
def prod(rendered: dict[str, Rendered]) -> Rendered:
    return rendered["prod"]


def test_apply_is_server_side_with_the_airpath_field_manager(
    cluster: FakeCluster, client: KubeClient, prod: Rendered
) -> None:
    lines = apply_all(client, prod.manifests)
    assert lines[0] == "applied Namespace/airpath (generation 1)"
    assert len(lines) == len(prod.manifests) == len(cluster.objects)
    patches = [r for r in cluster.requests if r.method == "PATCH"]
    assert len(patches) == len(prod.manifests)
    for request in patches:
        assert request.headers["Content-Type"] == APPLY_PATCH
        assert request.query == {"fieldManager": ["airpath"], "fieldValidation": ["Strict"]}
    assert patches[0].path == "/api/v1/namespaces/airpath"
    paths = {r.path for r in patches}
    assert (
        "/apis/sparkoperator.k8s.io/v1beta2/namespaces/airpath/sparkapplications/airpath-stream"
        in paths
    )
    assert "/apis/scheduling.k8s.io/v1/priorityclasses/airpath-streaming" in paths
    # Applying the same manifests again changes nothing.
    before = {k: v["metadata"]["generation"] for k, v in cluster.objects.items()}
    apply_all(client, prod.manifests)
    assert {k: v["metadata"]["generation"] for k, v in cluster.objects.items()} == before


def test_the_clients_authentication_is_used(cluster: FakeCluster, prod: Rendered) -> None:
    api = cluster.api_client()
    api.configuration.api_key = {"BearerToken": "Bearer sekret"}
    KubeClient(api).apply(prod.manifests[0])
    assert cluster.requests[-1].headers["authorization"] == "Bearer sekret"


def test_conflicts_need_force(cluster: FakeCluster, client: KubeClient, prod: Rendered) -> None:
    apply_all(client, prod.manifests)
    hpa = by_kind(prod, "HorizontalPodAutoscaler")
    edited = {**hpa, "spec": {**hpa["spec"], "minReplicas": 5}}
    KubeClient(cluster.api_client(), field_manager="kubectl-edit").apply(edited, force=True)
    with pytest.raises(ClusterError, match=r"spec.minReplicas.*--force-conflicts"):
        client.apply(hpa)
    client.apply(hpa, force=True)
    stored = cluster.get("HorizontalPodAutoscaler", "airpath-router", NS)
    assert stored is not None
    assert stored["spec"]["minReplicas"] == 3
    assert cluster.requests[-1].query["force"] == ["true"]


def test_fields_a_layer_drops_are_removed(cluster: FakeCluster, client: KubeClient) -> None:
    secret = ["cluster.redis.passwordSecret.name=redis", "cluster.redis.passwordSecret.key=pw"]
    apply_all(client, render("prod", sets=secret).manifests)
    container = cluster.get("Deployment", "airpath-router", NS)["spec"]["template"]["spec"][
        "containers"
    ][0]  # type: ignore[index]
    assert "env" in container
    apply_all(client, render("prod").manifests)
    container = cluster.get("Deployment", "airpath-router", NS)["spec"]["template"]["spec"][
        "containers"
    ][0]  # type: ignore[index]
    assert "env" not in container


def test_dry_run_stores_nothing(cluster: FakeCluster, client: KubeClient, prod: Rendered) -> None:
    lines = apply_all(client, prod.manifests[:1], dry_run=True)
    assert lines == ["applied Namespace/airpath (generation 1) (server dry run)"]
    assert cluster.objects == {}
    assert cluster.requests[-1].query["dryRun"] == ["All"]


def test_missing_crds_and_namespaces_are_explained(prod: Rendered) -> None:
    served = {k for k in KINDS if k not in ("PodMonitor", "ServiceMonitor", "PrometheusRule")}
    cluster = FakeCluster(served=served)
    client = KubeClient(cluster.api_client())
    with pytest.raises(ClusterError, match=r"namespaces \"airpath\" not found"):
        client.apply(by_kind(prod, "Role"))
    with pytest.raises(
        ClusterError, match=r"PodMonitor airpath-stream-driver: .*CRD of monitoring"
    ):
        apply_all(client, prod.manifests)


def test_a_changed_job_template_is_refused_with_the_fix(client: KubeClient) -> None:
    apply_all(client, render("dev").manifests)
    changed = render("dev", sets=["simulator.seed=7"])
    with pytest.raises(
        ClusterError, match=r"delete it first \(airpath k8s delete --component simulator\)"
    ):
        apply_all(client, changed.manifests)


def test_status_of_a_healthy_deployment(
    cluster: FakeCluster, client: KubeClient, prod: Rendered
) -> None:
    apply_all(client, prod.manifests)
    _running(cluster)
    report = status_report(client, prod.plan)
    assert report.healthy, report.lines
    assert report.lines[0] == "SparkApplication airpath-stream: RUNNING (attempt 1)"
    assert "  executors: 2 RUNNING" in report.lines
    assert "Deployment airpath-router: 3/3 ready" in report.lines


def test_status_explains_an_image_pull_failure(
    cluster: FakeCluster, client: KubeClient, prod: Rendered
) -> None:
    apply_all(client, prod.manifests)
    _running(cluster)
    app = cluster.get("SparkApplication", "airpath-stream", NS)
    cluster.put(with_status(app, {"applicationState": {"state": "SUBMITTED"}}))  # type: ignore[arg-type]
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x:1"'}}
    cluster.put(
        pod(
            "airpath-stream-driver",
            NS,
            _stream_pods()["driver"],
            phase="Pending",
            ready=False,
            state=waiting,
        )
    )
    report = status_report(client, prod.plan)
    assert not report.healthy
    assert any("image pull failed (ImagePullBackOff)" in line for line in report.lines)


def test_status_explains_unschedulable_executors_and_oom_kills(
    cluster: FakeCluster, client: KubeClient, prod: Rendered
) -> None:
    apply_all(client, prod.manifests)
    _running(cluster)
    labels = _stream_pods()["executor"]
    unschedulable = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }
    ]
    cluster.put(pod("airpath-stream-exec-3", NS, labels, phase="Pending", conditions=unschedulable,
                    container="spark-kubernetes-executor"))  # fmt: skip
    oom = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    cluster.put(pod("airpath-stream-exec-1", NS, labels, container="spark-kubernetes-executor",
                    last_state=oom, memory_limit="12853Mi"))  # fmt: skip
    report = status_report(client, prod.plan)
    assert not report.healthy
    text = "\n".join(report.lines)
    assert "pending, unschedulable: 0/3 nodes are available: 3 Insufficient cpu." in text
    assert "airpath k8s size" in text
    assert "OOMKilled (last run) at its 12853Mi memory limit" in text


def test_status_reports_the_last_training_run(
    cluster: FakeCluster, client: KubeClient, prod: Rendered
) -> None:
    apply_all(client, prod.manifests)
    _running(cluster)
    sched = cluster.get("ScheduledSparkApplication", "airpath-train", NS)
    cluster.put(with_status(sched, {"scheduleState": "Scheduled", "lastRun": "2026-01-02T02:00:00Z",  # type: ignore[arg-type]
                                    "nextRun": "2026-01-03T02:00:00Z",
                                    "lastRunName": "airpath-train-1767319200"}))  # fmt: skip
    run = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "airpath-train-1767319200", "namespace": NS},
        "spec": {},
        "status": {
            "applicationState": {"state": "FAILED", "errorMessage": "driver exited 1\ntrace"}
        },
    }
    cluster.put(run, manager="spark-operator")
    report = status_report(client, prod.plan)
    assert any(
        line.startswith("ScheduledSparkApplication airpath-train: Scheduled, last run 2026-01-02")
        for line in report.lines
    )
    assert "SparkApplication airpath-train-1767319200: FAILED" in report.lines
    assert "  error: driver exited 1" in report.lines
    assert not report.healthy


def test_status_before_apply(client: KubeClient, prod: Rendered) -> None:
    report = status_report(client, prod.plan)
    assert report.lines[0] == "SparkApplication airpath-stream: not found (not applied?)"
    assert not report.healthy


def test_wait_polls_until_healthy(cluster: FakeCluster, client: KubeClient, prod: Rendered) -> None:
    apply_all(client, prod.manifests)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 20:
            _running(cluster)

    report = wait_healthy(client, prod.plan, 600, sleep=sleep, clock=lambda: now[0])
    assert report.healthy
    assert now[0] == 20
    assert not wait_healthy(client, render("prod", sets=["router.name=other"]).plan, 30,
                            sleep=sleep, clock=lambda: now[0]).healthy  # fmt: skip


def test_driver_logs(cluster: FakeCluster, client: KubeClient, prod: Rendered) -> None:
    apply_all(client, prod.manifests)
    with pytest.raises(ClusterError, match="driver pod airpath-stream-driver does not exist yet"):
        driver_logs(client, prod.plan)
    _running(cluster)
    cluster.put_log(NS, "airpath-stream-driver", "spark-kubernetes-driver", "a\nb\nc\n")
    assert driver_logs(client, prod.plan) == "a\nb\nc\n"
    assert driver_logs(client, prod.plan, tail=2) == "b\nc\n"
    request = cluster.requests[-1]
    assert request.path == "/api/v1/namespaces/airpath/pods/airpath-stream-driver/log"
    assert request.query == {"container": ["spark-kubernetes-driver"], "tailLines": ["2"]}
    cluster.put_log(NS, "airpath-stream-driver", "spark-kubernetes-driver", "oom\n", previous=True)
    assert driver_logs(client, prod.plan, previous=True) == "oom\n"
    with pytest.raises(ClusterError, match="airpath-train has not run yet"):
        driver_logs(client, prod.plan, job="train")


def test_delete_keeps_data_unless_purged(
    cluster: FakeCluster, client: KubeClient, prod: Rendered
) -> None:
    apply_all(client, prod.manifests)
    lines = delete_all(client, prod.manifests)
    assert "kept PersistentVolumeClaim/airpath-work (--purge deletes it)" in lines
    assert lines[0] == "deleted ConfigMap/airpath-grafana-dashboard"
    remaining = {v["kind"] for v in cluster.objects.values()}
    assert remaining == {"Namespace", "PriorityClass", "PersistentVolumeClaim"}
    lines = delete_all(client, prod.manifests, purge=True)
    assert "SparkApplication/airpath-stream already gone" in lines
    assert cluster.objects == {}


def test_components_select_their_resources(prod: Rendered) -> None:
    kinds = {m["kind"] for m in select(prod.manifests, ["router"])}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert [m["kind"] for m in select(prod.manifests, ["stream"])] == ["SparkApplication"]
    assert len(select(prod.manifests, None)) == len(prod.manifests)


def test_no_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeconfigError, match="kubeconfig"):
        connect_kubeconfig(str(tmp_path / "missing"))


def test_an_unreachable_api_server_is_a_cluster_error(prod: Rendered) -> None:
    class Down(FakeCluster):
        def request(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]  # noqa: ARG002
            raise ConnectionRefusedError("connection refused")

    with pytest.raises(ClusterError, match="cannot reach the Kubernetes API"):
        KubeClient(Down().api_client()).apply(prod.manifests[0])
