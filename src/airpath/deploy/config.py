"""The merged configuration as typed, frozen dataclasses.

The YAML layers (see :mod:`.layers`) hold every default; these classes only say what
shape the merged tree must have, so a layer directory that forgets a key fails with
"… is required but no layer sets it". Values the layers leave ``null`` on purpose
(executor sizes, CPU requests, memory overheads) are derived by :func:`.resolve.resolve`,
the one function where computed defaults are applied.

Every Spark-facing field names the property or CRD field it becomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from airpath.deploy.layers import Merged
from airpath.deploy.sizing import NodeShape
from airpath.deploy.typed import parse

AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod", "ReadOnlyMany"]


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


@dataclass(frozen=True)
class Pool:
    """A node pool: its node shape and how pods are steered onto it."""

    node_cores: str
    node_memory: str
    system_reserved: Resources | None = None  # None: GKE's tiers (sizing.default_reserved)
    daemonsets: Resources | None = None  # None: sizing's DEFAULT_DAEMONSET_*
    node_labels: dict[str, str] = field(default_factory=dict)  # selects this pool's nodes
    taints: list[Taint] = field(default_factory=list)  # what pods need to tolerate
    spot: bool = False
    max_nodes: int | None = None  # a fixed pool (dev): everything placed on it must fit

    def shape(self) -> NodeShape:
        reserved = self.system_reserved
        return NodeShape.create(
            self.node_cores,
            self.node_memory,
            system_reserved=(reserved.cpu, reserved.memory) if reserved else None,
            daemonset_cpu=self.daemonsets.cpu if self.daemonsets else None,
            daemonset_memory=self.daemonsets.memory if self.daemonsets else None,
        )


@dataclass(frozen=True)
class Storage:
    work_claim: str  # PVC with checkpoints, lake, dead letters, event logs, landing
    work_size: str
    work_access_mode: AccessMode
    work_storage_class: str | None = None
    work_mount: str = "/var/lib/airpath"
    # On-demand PVCs for executor local dirs (spark-local-dir-1); None: node emptyDir.
    local_dir_size: str | None = None
    local_dir_storage_class: str | None = None


@dataclass(frozen=True)
class Monitoring:
    enabled: bool
    selector_labels: dict[str, str] = field(default_factory=dict)  # Prometheus' selector
    namespace: str = "monitoring"  # where Prometheus runs (NetworkPolicy source)
    dashboard_label: str = "grafana_dashboard"
    dashboard_label_value: str = "1"
    stale_field_after_s: int = 600
    dead_letter_ratio: float = 0.2  # rejected / input over 10 min
    route_latency_p95_s: float = 1.0


@dataclass(frozen=True)
class BatchScheduler:
    name: Literal["yunikorn", "volcano"] | None = None  # spec.batchScheduler
    queue: str | None = None  # spec.batchSchedulerOptions.queue


@dataclass(frozen=True)
class PriorityClasses:
    streaming: str
    streaming_value: int
    batch: str
    batch_value: int


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True)
class Redis:
    deploy: bool  # false: use url (a managed Redis)
    image: str
    url: str | None = None
    password_secret: SecretRef | None = None
    resources: Resources = field(default_factory=lambda: Resources("100m", "512Mi"))


@dataclass(frozen=True)
class Network:
    path: str  # baked into the image by deploy/Dockerfile
    claim_name: str | None = None  # or a read-only PVC mounted at path


@dataclass(frozen=True)
class Cluster:
    spark_version: str  # spec.sparkVersion
    kubernetes_version: str  # schemas to validate core kinds against
    image: str  # spec.image (spark.kubernetes.container.image)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"]
    storage: Storage
    monitoring: Monitoring
    priority_classes: PriorityClasses
    redis: Redis
    network: Network
    image_pull_secrets: list[str] = field(default_factory=list)
    batch_scheduler: BatchScheduler = field(default_factory=BatchScheduler)
    spark_conf: dict[str, str] = field(default_factory=dict)  # defaults for both jobs


@dataclass(frozen=True)
class Driver:
    pool: str
    service_account: str  # spec.driver.serviceAccount
    cores: int = 1  # spark.driver.cores
    memory: str = "2g"  # spark.driver.memory
    core_request: str | None = None  # spark.kubernetes.driver.request.cores; None: cores
    core_limit: str | None = None  # spark.kubernetes.driver.limit.cores
    memory_overhead: str | None = None  # spark.driver.memoryOverhead; None: max(f·heap, 384m)
    image: str | None = None


@dataclass(frozen=True)
class Executor:
    pool: str
    service_account: str
    instances: int  # spec.executor.instances (the stream's fixed count; train: initial)
    per_node: int | None = None  # executors per node for sizing; None: ≤ 5 slots each
    cores: int | None = None  # spark.executor.cores; None: from sizing
    core_request: str | None = None  # spark.kubernetes.executor.request.cores
    core_limit: str | None = None
    memory: str | None = None  # spark.executor.memory
    memory_overhead: str | None = None  # spark.executor.memoryOverhead
    image: str | None = None


@dataclass(frozen=True)
class Restart:
    on_failure_retries: int  # spec.restartPolicy.onFailureRetries
    on_failure_retry_interval: int  # seconds
    on_submission_failure_retries: int
    on_submission_failure_retry_interval: int


@dataclass(frozen=True)
class Decommission:
    enabled: bool  # spark.decommission.enabled + spark.storage.decommission.*
    grace_period_seconds: int  # executor terminationGracePeriodSeconds
    fallback_storage: str | None = None  # spark.storage.decommission.fallbackStorage.path


@dataclass(frozen=True)
class Kafka:
    """The Kafka source (``format: kafka``; the connector is in the image)."""

    bootstrap: str | None = None  # --kafka-bootstrap HOST:PORT[,…]
    topic: str = "airpath.readings"  # --kafka-topic


@dataclass(frozen=True)
class Stream:
    name: str
    driver: Driver
    executor: Executor
    restart: Restart
    decommission: Decommission
    landing: str
    work: str
    trigger: str  # airpath stream --trigger
    watermark: str
    clock: Literal["wall", "event"]
    format: Literal["jsonl", "csv", "parquet", "kafka"]
    metrics_port: int
    horizons: str = "0,15,30,60"
    tile_deg: float = 0.01
    # Shuffle partitions (airpath stream --partitions); None: executors × task slots. A
    # stateful query's checkpoint pins the count at its first start, so set it for the
    # largest size the job will scale to.
    partitions: int | None = None
    workload: Literal["pyspark", "jvm"] = "pyspark"
    image: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    kafka: Kafka = field(default_factory=Kafka)


@dataclass(frozen=True)
class DynamicAllocation:
    enabled: bool  # spec.dynamicAllocation.enabled
    min_executors: int = 0
    max_executors: int = 4
    initial_executors: int | None = None
    shuffle_tracking: bool = True  # spark.dynamicAllocation.shuffleTracking.enabled


@dataclass(frozen=True)
class Train:
    enabled: bool
    name: str
    schedule: str  # cron, spec.schedule
    driver: Driver
    executor: Executor
    dynamic_allocation: DynamicAllocation
    restart: Restart
    lake: str
    out: str
    time_zone: str = "UTC"
    concurrency_policy: Literal["Forbid", "Allow", "Replace"] = "Forbid"
    roll_interval: str | None = None  # spark.kubernetes.executor.rollInterval; None: off
    roll_policy: str = "OUTLIER"
    decommission: Decommission = field(default_factory=lambda: Decommission(True, 60))
    successful_run_history_limit: int = 3
    failed_run_history_limit: int = 3
    extra_args: list[str] = field(default_factory=list)
    workload: Literal["pyspark", "jvm"] = "pyspark"
    image: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Router:
    name: str
    pool: str
    replicas: int
    resources: Resources
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int  # percent of the CPU request
    min_available: int  # PodDisruptionBudget
    port: int = 8080
    service_account: str = "airpath-router"


@dataclass(frozen=True)
class Simulator:
    enabled: bool
    duration: str = "24h"
    speed: float = 30.0  # simulated s per wall s
    seed: int = 0
    out: str = "/var/lib/airpath/sim"


@dataclass(frozen=True)
class HistoryServer:
    enabled: bool
    port: int = 18080


@dataclass(frozen=True)
class Namespace:
    name: str
    pod_security: Literal["privileged", "baseline", "restricted"]
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployConfig:
    """The whole merged configuration."""

    pools: dict[str, Pool]
    cluster: Cluster
    stream: Stream
    train: Train
    router: Router
    simulator: Simulator
    history_server: HistoryServer
    namespace: Namespace


def parse_config(merged: Merged) -> DeployConfig:
    """The merged tree as a :class:`DeployConfig`; errors name the layer at fault."""
    return parse(DeployConfig, merged.tree, merged.origin)
