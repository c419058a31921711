"""What the overlays render: the full set, and the properties each resource must have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_helpers import by_kind

from airpath.deploy import Rendered, render, write
from airpath.deploy.resolve import IN_CLUSTER_MASTER, MAIN_FILE

COMMON = {
    "Namespace",
    "PriorityClass",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "Deployment",
    "Service",
    "ConfigMap",
    "SparkApplication",
    "ScheduledSparkApplication",
    "PodMonitor",
    "ServiceMonitor",
    "PrometheusRule",
}


def test_each_overlay_renders_the_full_set(rendered: dict[str, Rendered]) -> None:
    dev = {m["kind"] for m in rendered["dev"].manifests}
    prod = {m["kind"] for m in rendered["prod"].manifests}
    assert dev == COMMON | {"Job"}  # the simulator; one replica: no HPA, no PDB
    assert prod == COMMON | {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
    names = {(m["kind"], m["metadata"]["name"]) for m in rendered["prod"].manifests}
    assert {("Deployment", "airpath-redis"), ("Deployment", "airpath-history")} <= names
    for r in rendered.values():
        ns = r.plan.namespace
        for m in r.manifests:
            if m["kind"] not in ("Namespace", "PriorityClass"):
                assert m["metadata"]["namespace"] == ns, m["metadata"]["name"]


def test_one_file_per_resource_and_stale_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    prod = write(render("prod"), tmp_path)
    assert len(prod) == len({p.name for p in prod}) == 30
    for path in prod:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1
        assert docs[0]["kind"].lower() in path.name
        assert "&id" not in path.read_text()  # no YAML anchors
    dev = write(render("dev"), tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == sorted(p.name for p in dev)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def _app(r: Rendered) -> dict[str, Any]:
    return by_kind(r, "SparkApplication")


def test_streaming_application(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    spec = _app(r)["spec"]
    conf = spec["sparkConf"]
    assert (spec["type"], spec["mode"], spec["sparkVersion"]) == ("Python", "cluster", "4.3.0")
    assert spec["mainApplicationFile"] == MAIN_FILE
    # A fixed executor count, never dynamic allocation (SPARK-24815).
    assert spec["executor"]["instances"] == 4
    assert "dynamicAllocation" not in spec
    assert conf["spark.dynamicAllocation.enabled"] == "false"
    # Sized from the spot pool: one executor per 4-core node, request what is free.
    assert spec["executor"]["cores"] == 4
    assert spec["executor"]["coreRequest"] == "3600m"
    assert conf["spark.executor.memoryOverheadFactor"] == "0.4"
    # Restart with retries and (linear) back-off.
    assert spec["restartPolicy"] == {
        "type": "OnFailure",
        "onFailureRetries": 10,
        "onFailureRetryInterval": 30,
        "onSubmissionFailureRetries": 5,
        "onSubmissionFailureRetryInterval": 60,
    }
    # Graceful decommissioning with block migration.
    for key in (
        "spark.decommission.enabled",
        "spark.storage.decommission.enabled",
        "spark.storage.decommission.shuffleBlocks.enabled",
        "spark.storage.decommission.rddBlocks.enabled",
    ):
        assert conf[key] == "true"
    # PVC reuse for local dirs: on-demand claims named spark-local-dir-*, owned by the driver.
    prefix = "spark.kubernetes.executor.volumes.persistentVolumeClaim.spark-local-dir-1"
    assert conf[f"{prefix}.options.claimName"] == "OnDemand"
    assert conf[f"{prefix}.options.sizeLimit"] == "100Gi"
    assert conf["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "true"
    assert conf["spark.kubernetes.driver.reusePersistentVolumeClaim"] == "true"
    assert conf["spark.shuffle.sort.io.plugin.class"].endswith("KubernetesLocalDiskShuffleDataIO")
    # RocksDB state store with changelog checkpointing; checkpoints on the work PVC.
    assert conf["spark.sql.streaming.stateStore.providerClass"].endswith(
        "RocksDBStateStoreProvider"
    )
    assert conf["spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"] == "true"
    # Prometheus and the event log.
    assert conf["spark.ui.prometheus.enabled"] == "true"
    assert conf["spark.metrics.conf.*.sink.prometheusServlet.class"].endswith("PrometheusServlet")
    assert conf["spark.eventLog.enabled"] == "true"
    assert conf["spark.eventLog.rolling.enabled"] == "true"
    assert conf["spark.eventLog.dir"] == "file:///var/lib/airpath/spark-events"
    # Keys the operator's webhook rejects never appear.
    for key in conf:
        assert key != "spark.master"
        assert not key.startswith("spark.kubernetes.container.image")
        assert key not in ("spark.kubernetes.namespace", "spark.kubernetes.driver.podTemplateFile")


def test_job_arguments(rendered: dict[str, Rendered]) -> None:
    args = _app(rendered["prod"])["spec"]["arguments"]
    assert args[0] == "stream"
    flags = dict(zip(args[1::2], args[2::2], strict=True))
    # The job's own session builder would otherwise run Spark in local mode in the driver.
    assert flags["--master"] == IN_CLUSTER_MASTER
    assert flags["--partitions"] == "32"  # pinned by the prod layer for 8 × 4 slots
    assert flags["--field-store"] == "redis://airpath-redis.airpath.svc:6379/0"
    assert flags["--work"] == "/var/lib/airpath/stream"
    assert flags["--metrics-port"] == "9091"
    dev = dict(zip(*[iter(_app(rendered["dev"])["spec"]["arguments"][1:])] * 2, strict=True))
    assert (dev["--clock"], dev["--landing"]) == ("event", "/var/lib/airpath/sim/readings")


def test_session_owned_keys_are_forwarded_to_the_job_only_when_changed() -> None:
    r = render("dev", sets=["stream.sparkConf.spark.sql.session.timeZone=Europe/Helsinki"])
    args = _app(r)["spec"]["arguments"]
    assert args[args.index("--conf") + 1] == "spark.sql.session.timeZone=Europe/Helsinki"
    assert args.count("--conf") == 1  # RocksDB and metrics keys equal the job's own


def test_pod_templates_carry_placement_not_the_webhook_fields(
    rendered: dict[str, Rendered],
) -> None:
    spec = _app(rendered["prod"])["spec"]
    for role in ("driver", "executor"):
        for webhook_field in ("tolerations", "affinity", "priorityClassName", "securityContext"):
            assert webhook_field not in spec[role]
    driver = spec["driver"]["template"]["spec"]
    executor = spec["executor"]["template"]["spec"]
    # The driver requires on-demand nodes; executors prefer spot and tolerate its taint.
    required = driver["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    term = required["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert (term["key"], term["values"]) == ("karpenter.sh/capacity-type", ["on-demand"])
    preferred = executor["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred[0]["preference"]["matchExpressions"][0]["values"] == ["spot"]
    assert executor["tolerations"] == [
        {"key": "airpath.io/spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    assert executor["terminationGracePeriodSeconds"] == 120
    assert executor["automountServiceAccountToken"] is False
    assert driver["priorityClassName"] == executor["priorityClassName"] == "airpath-streaming"
    assert driver["containers"][0]["name"] == "spark-kubernetes-driver"
    assert executor["containers"][0]["name"] == "spark-kubernetes-executor"
    assert driver["containers"][0]["ports"] == [
        {"name": "metrics", "containerPort": 9091, "protocol": "TCP"}
    ]
    # Directories Spark needs before it starts (the event log) are made by an init container.
    assert "/var/lib/airpath/spark-events" in driver["initContainers"][0]["command"]
    # dev: one unlabelled node, no spot: no affinity, no tolerations.
    dev = _app(rendered["dev"])["spec"]
    assert "affinity" not in dev["executor"]["template"]["spec"]
    assert "tolerations" not in dev["executor"]["template"]["spec"]


def test_pod_template_configmap_holds_the_same_templates(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    data = by_kind(r, "ConfigMap", "airpath-pod-templates")["data"]
    assert set(data) == {"stream-driver.yaml", "stream-executor.yaml", "train-driver.yaml",
                         "train-executor.yaml"}  # fmt: skip
    pod = yaml.safe_load(data["stream-executor.yaml"])
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert pod["spec"] == _app(r)["spec"]["executor"]["template"]["spec"]


def test_training_is_scheduled_with_dynamic_allocation(rendered: dict[str, Rendered]) -> None:
    prod = by_kind(rendered["prod"], "ScheduledSparkApplication")["spec"]
    assert prod["schedule"] == "0 2 * * *"
    assert prod["concurrencyPolicy"] == "Forbid"
    template = prod["template"]
    assert template["dynamicAllocation"] == {
        "enabled": True,
        "minExecutors": 0,
        "maxExecutors": 16,
        "shuffleTrackingEnabled": True,
        "initialExecutors": 1,
    }
    network, master = "/opt/airpath/network", IN_CLUSTER_MASTER
    lake, models = "/var/lib/airpath/stream/lake", "/var/lib/airpath/models"
    assert template["arguments"] == ["train", "--lake", lake, "--network", network,
                                     "--out", models, "--master", master]  # fmt: skip
    conf = template["sparkConf"]
    assert conf["spark.plugins"] == "org.apache.spark.scheduler.cluster.k8s.ExecutorRollPlugin"
    assert conf["spark.kubernetes.executor.rollInterval"] == "1h"
    assert template["driver"]["template"]["spec"]["priorityClassName"] == "airpath-batch"
    dev = by_kind(rendered["dev"], "ScheduledSparkApplication")["spec"]["template"]["sparkConf"]
    assert "spark.plugins" not in dev


@pytest.mark.parametrize("scheduler", ["yunikorn", "volcano"])
def test_gang_scheduling_through_a_batch_scheduler(scheduler: str) -> None:
    r = render("prod", sets=[f"cluster.batchScheduler.name={scheduler}",
                             "cluster.batchScheduler.queue=root.airpath"])  # fmt: skip
    for spec in (_app(r)["spec"], by_kind(r, "ScheduledSparkApplication")["spec"]["template"]):
        assert spec["batchScheduler"] == scheduler
        assert spec["batchSchedulerOptions"]["queue"] == "root.airpath"
    options = _app(r)["spec"]["batchSchedulerOptions"]
    assert ("priorityClassName" in options) == (scheduler == "volcano")


def test_router(rendered: dict[str, Rendered]) -> None:
    prod = rendered["prod"]
    deployment = by_kind(prod, "Deployment", "airpath-router")
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:1] == ["serve"]
    assert "--field-store" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1536Mi"}
    hpa = by_kind(prod, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    assert by_kind(prod, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    assert by_kind(prod, "Service", "airpath-router")["spec"]["ports"][0]["targetPort"] == "http"
    dev = by_kind(rendered["dev"], "Deployment", "airpath-router")
    assert dev["spec"]["replicas"] == 1


def test_driver_rbac_is_least_privilege(rendered: dict[str, Rendered]) -> None:
    for overlay, pvcs in (("dev", False), ("prod", True)):
        r = rendered[overlay]
        rules = by_kind(r, "Role")["rules"]
        resources = {res for rule in rules for res in rule["resources"]}
        expected = {"pods", "services", "configmaps"} | (
            {"persistentvolumeclaims"} if pvcs else set()
        )
        assert resources == expected
        assert all(rule["apiGroups"] == [""] and "*" not in rule["verbs"] for rule in rules)
        assert [s["name"] for s in by_kind(r, "RoleBinding")["subjects"]] == [
            "airpath-spark-driver"
        ]
        accounts = {m["metadata"]["name"]: m for m in r.manifests if m["kind"] == "ServiceAccount"}
        assert accounts["airpath-spark-executor"]["automountServiceAccountToken"] is False
        assert accounts["airpath-router"]["automountServiceAccountToken"] is False
        assert "automountServiceAccountToken" not in accounts["airpath-spark-driver"]


def test_network_policies_and_priorities(rendered: dict[str, Rendered]) -> None:
    r = rendered["prod"]
    policies = {
        m["metadata"]["name"]: m["spec"] for m in r.manifests if m["kind"] == "NetworkPolicy"
    }
    assert policies["airpath-default-deny"]["ingress"] == []
    assert policies["airpath-redis"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]
    spark = policies["airpath-spark"]["podSelector"]["matchExpressions"]
    assert spark == [{"key": "spark-role", "operator": "Exists"}]
    classes = {m["metadata"]["name"]: m for m in r.manifests if m["kind"] == "PriorityClass"}
    assert classes["airpath-streaming"]["value"] > classes["airpath-batch"]["value"]
    assert classes["airpath-batch"]["preemptionPolicy"] == "Never"
    ns = by_kind(r, "Namespace")["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_managed_redis_with_a_password() -> None:
    r = render(
        "prod",
        sets=[
            "cluster.redis.deploy=false",
            "cluster.redis.url=rediss://cache.example.com:6380/0",
            "cluster.redis.passwordSecret.name=redis-auth",
            "cluster.redis.passwordSecret.key=password",
        ],
    )
    names = {(m["kind"], m["metadata"]["name"]) for m in r.manifests}
    assert ("Deployment", "airpath-redis") not in names
    url = "rediss://:$(AIRPATH_REDIS_PASSWORD)@cache.example.com:6380/0"
    assert url in _app(r)["spec"]["arguments"]
    driver = _app(r)["spec"]["driver"]["template"]["spec"]["containers"][0]
    router = by_kind(r, "Deployment", "airpath-router")["spec"]["template"]["spec"]["containers"][0]
    for container in (driver, router):
        ref = container["env"][0]["valueFrom"]["secretKeyRef"]
        assert (container["env"][0]["name"], ref["name"]) == (
            "AIRPATH_REDIS_PASSWORD",
            "redis-auth",
        )


def test_dev_runs_the_simulator_into_the_landing_directory(rendered: dict[str, Rendered]) -> None:
    job = by_kind(rendered["dev"], "Job", "airpath-simulator")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:1] == ["simulate"]
    assert args[args.index("--out") + 1] == "/var/lib/airpath/sim"
    pvc = by_kind(rendered["dev"], "PersistentVolumeClaim")["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"]
    assert by_kind(rendered["prod"], "PersistentVolumeClaim")["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]


def test_partitions_default_to_executors_times_slots() -> None:
    args = _app(render("prod", sets=["stream.partitions=null"]))["spec"]["arguments"]
    assert args[args.index("--partitions") + 1] == "16"  # 4 executors × 4 slots


def test_the_kafka_source() -> None:
    sets = ["stream.format=kafka", "stream.kafka.bootstrap=kafka-0.kafka:9092,kafka-1.kafka:9092"]
    args = _app(render("prod", sets=sets))["spec"]["arguments"]
    assert args[args.index("--format") + 1] == "kafka"
    assert args[args.index("--kafka-bootstrap") + 1] == "kafka-0.kafka:9092,kafka-1.kafka:9092"
    assert args[args.index("--kafka-topic") + 1] == "airpath.readings"
    from airpath.deploy import LayerError

    with pytest.raises(LayerError, match="needs the brokers"):
        render("prod", sets=["stream.format=kafka"])
