"""Every computed default, in one function: :func:`resolve` turns the merged
configuration into a :class:`Plan` that the manifest builders only read.

What is derived here, and why:

* executor sizes from the pool's node shape (:mod:`.sizing`) unless a layer sets them,
  and the check that every pod fits a node of its pool (and, for a fixed pool such as
  dev's single node, that everything placed on it fits together);
* driver CPU request (its cores) and memory overheads: ``max(f × heap, 384 MiB)`` with
  ``f`` = 0.4 for PySpark (its Python workers live outside the JVM heap), 0.1 for JVM;
* the Spark properties that follow from the structured settings: decommissioning with
  block migration, on-demand PVCs for local dirs, executor rolling, overhead factors;
* the job's command line, including ``--partitions`` = executors × task slots (one
  shuffle partition per slot) unless ``stream.partitions`` pins it, and
  ``--master k8s://…``, because ``airpath stream`` and ``airpath train`` build their
  session with their own master (``local[2]`` unless told) and builder options win over
  ``spark-submit``'s;
* the field store's address, in-cluster Redis or a managed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from airpath.deploy.config import DeployConfig, Driver, Executor, Pool
from airpath.deploy.errors import LayerError, SizingError
from airpath.deploy.quantity import (
    format_cpu,
    format_memory,
    format_spark_memory,
    parse_cpu_m,
    parse_memory_mib,
    parse_spark_memory_mib,
)
from airpath.deploy.sizing import OVERHEAD_FACTOR, ExecutorSize, overhead_mib, size_executors
from airpath.deploy.sparkconf import forwarded_session_conf

IN_CLUSTER_MASTER = "k8s://https://kubernetes.default.svc:443"
MAIN_FILE = "local:///opt/airpath/main.py"  # written by deploy/Dockerfile
REDIS_PASSWORD_ENV = "AIRPATH_REDIS_PASSWORD"
LOCAL_DIR_VOLUME = "spark-local-dir-1"  # the spark-local-dir- prefix makes it a local dir
ROLL_PLUGIN = "org.apache.spark.scheduler.cluster.k8s.ExecutorRollPlugin"
SHUFFLE_IO_PLUGIN = "org.apache.spark.shuffle.KubernetesLocalDiskShuffleDataIO"
PART_OF = "airpath"


@dataclass(frozen=True)
class PodPlan:
    """Resolved sizes of a driver or of one executor (Spark's own units)."""

    pool: str
    cores: int
    core_request: str
    core_limit: str | None
    memory: str
    memory_overhead: str
    service_account: str
    image: str | None
    cpu_m: int
    memory_mib: int  # heap + overhead: what the pod requests


@dataclass(frozen=True)
class JobPlan:
    name: str
    component: str  # stream | train
    driver: PodPlan
    executor: PodPlan
    instances: int
    max_executors: int
    spark_conf: dict[str, str]
    arguments: list[str]
    sizing: ExecutorSize | None  # None when every executor size was set by a layer


@dataclass(frozen=True)
class Plan:
    """What the manifest builders render: the config plus everything derived from it."""

    config: DeployConfig
    stream: JobPlan
    train: JobPlan | None
    field_store_url: str
    redis_host: str | None  # the in-cluster Redis Service, if airpath deploys one

    @property
    def namespace(self) -> str:
        return self.config.namespace.name

    def labels(self, component: str, name: str | None = None) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": name or f"airpath-{component}",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "airpath",
        }

    def pool(self, name: str) -> Pool:
        return self.config.pools[name]


def resolve(config: DeployConfig) -> Plan:
    """The one place where computed defaults are applied (see the module doc)."""
    for job, pod in _pools_used(config):
        if pod not in config.pools:
            known = ", ".join(sorted(config.pools)) or "none"
            raise LayerError(f"{job}.pool: unknown pool {pod!r} (pools: {known})")
    _check_router(config)
    url, host = _field_store(config)
    stream = _stream_plan(config, url)
    train = _train_plan(config) if config.train.enabled else None
    plan = Plan(config=config, stream=stream, train=train, field_store_url=url, redis_host=host)
    _check_fixed_pools(plan)
    return plan


def _check_router(config: DeployConfig) -> None:
    r = config.router
    if not 1 <= r.min_replicas <= r.max_replicas:
        raise LayerError(
            f"router: need 1 ≤ minReplicas ≤ maxReplicas, got {r.min_replicas}, {r.max_replicas}"
        )
    fewest = r.min_replicas if r.max_replicas > r.min_replicas else r.replicas
    if r.min_available and r.min_available >= fewest:
        # A budget no eviction can satisfy blocks every node drain and spot reclaim.
        raise LayerError(
            f"router.minAvailable ({r.min_available}) must be below the replica count "
            f"({fewest}), or no node running a replica could ever be drained"
        )


def _pools_used(config: DeployConfig) -> Iterator[tuple[str, str]]:
    yield "stream.driver", config.stream.driver.pool
    yield "stream.executor", config.stream.executor.pool
    yield "train.driver", config.train.driver.pool
    yield "train.executor", config.train.executor.pool
    yield "router", config.router.pool


def _field_store(config: DeployConfig) -> tuple[str, str | None]:
    redis = config.cluster.redis
    if redis.deploy:
        host = f"airpath-redis.{config.namespace.name}.svc"
        url = f"redis://{host}:6379/0"
    elif redis.url:
        host, url = None, redis.url
    else:
        raise LayerError("cluster.redis: set deploy: true or the url of a managed Redis")
    if redis.password_secret is not None:
        scheme, sep, rest = url.partition("://")
        rest = rest.split("@", 1)[-1]
        url = f"{scheme}{sep}:$({REDIS_PASSWORD_ENV})@{rest}"
    return url, host


def _driver_plan(config: DeployConfig, spec: Driver, workload: str, what: str) -> PodPlan:
    heap = parse_spark_memory_mib(spec.memory, f"{what}.memory")
    overhead = (
        parse_spark_memory_mib(spec.memory_overhead, f"{what}.memoryOverhead")
        if spec.memory_overhead
        else overhead_mib(heap, workload)
    )
    cpu_m = parse_cpu_m(spec.core_request or spec.cores, f"{what}.coreRequest")
    config.pools[spec.pool].shape().check_fits(cpu_m, heap + overhead, what)
    return PodPlan(
        pool=spec.pool,
        cores=spec.cores,
        core_request=format_cpu(cpu_m),
        core_limit=spec.core_limit,
        memory=format_spark_memory(heap),
        memory_overhead=format_spark_memory(overhead),
        service_account=spec.service_account,
        image=spec.image,
        cpu_m=cpu_m,
        memory_mib=heap + overhead,
    )


def _executor_plan(
    config: DeployConfig, spec: Executor, workload: str, what: str
) -> tuple[PodPlan, ExecutorSize | None]:
    node = config.pools[spec.pool].shape()
    explicit = (spec.cores, spec.core_request, spec.memory)
    size = None
    if None in explicit:
        size = size_executors(node, workload=workload, executors_per_node=spec.per_node)
    cores = spec.cores if spec.cores is not None else _get(size).cores
    if spec.core_request is not None:
        cpu_m = parse_cpu_m(spec.core_request, f"{what}.coreRequest")
    else:
        cpu_m = min(_get(size).core_request_m, cores * 1000)
    if spec.memory is not None:
        heap = parse_spark_memory_mib(spec.memory, f"{what}.memory")
        overhead = overhead_mib(heap, workload)
    else:
        heap, overhead = _get(size).heap_mib, _get(size).overhead_mib
    if spec.memory_overhead is not None:
        overhead = parse_spark_memory_mib(spec.memory_overhead, f"{what}.memoryOverhead")
    node.check_fits(cpu_m, heap + overhead, what)
    pod = PodPlan(
        pool=spec.pool,
        cores=cores,
        core_request=format_cpu(cpu_m),
        core_limit=spec.core_limit,
        memory=format_spark_memory(heap),
        memory_overhead=format_spark_memory(overhead),
        service_account=spec.service_account,
        image=spec.image,
        cpu_m=cpu_m,
        memory_mib=heap + overhead,
    )
    return pod, size


def _get(size: ExecutorSize | None) -> ExecutorSize:
    assert size is not None  # computed whenever a field is missing
    return size


def _common_conf(config: DeployConfig, job_conf: dict[str, str], workload: str) -> dict[str, str]:
    factor = str(OVERHEAD_FACTOR[workload])
    conf = {
        "spark.driver.memoryOverheadFactor": factor,
        "spark.executor.memoryOverheadFactor": factor,
    }
    storage = config.cluster.storage
    if storage.local_dir_size:
        prefix = f"spark.kubernetes.executor.volumes.persistentVolumeClaim.{LOCAL_DIR_VOLUME}"
        conf |= {
            f"{prefix}.options.claimName": "OnDemand",
            f"{prefix}.options.sizeLimit": storage.local_dir_size,
            f"{prefix}.mount.path": "/data",
            f"{prefix}.mount.readOnly": "false",
            # The driver owns on-demand PVCs and hands them to replacement executors, and
            # the Kubernetes shuffle IO plugin recovers the shuffle files found on them, so a
            # spot executor's shuffle output outlives it (Spark on Kubernetes docs,
            # "PVC-oriented executor pod allocation"; SPARK-35593).
            "spark.kubernetes.driver.ownPersistentVolumeClaim": "true",
            "spark.kubernetes.driver.reusePersistentVolumeClaim": "true",
            "spark.kubernetes.driver.waitToReusePersistentVolumeClaim": "true",
            "spark.shuffle.sort.io.plugin.class": SHUFFLE_IO_PLUGIN,
        }
        if storage.local_dir_storage_class:
            conf[f"{prefix}.options.storageClass"] = storage.local_dir_storage_class
    return conf | dict(config.cluster.spark_conf) | dict(job_conf)


def _decommission_conf(enabled: bool, fallback: str | None) -> dict[str, str]:
    if not enabled:
        return {"spark.decommission.enabled": "false"}
    conf = {
        # SIGPWR via the executor's preStop hook (/opt/decom.sh) starts a graceful exit that
        # migrates cached RDD and shuffle blocks to the surviving executors.
        "spark.decommission.enabled": "true",
        "spark.storage.decommission.enabled": "true",
        "spark.storage.decommission.rddBlocks.enabled": "true",
        "spark.storage.decommission.shuffleBlocks.enabled": "true",
    }
    if fallback:
        conf["spark.storage.decommission.fallbackStorage.path"] = fallback
        conf["spark.storage.decommission.fallbackStorage.cleanUp"] = "true"
    return conf


def _stream_plan(config: DeployConfig, url: str) -> JobPlan:
    s = config.stream
    driver = _driver_plan(config, s.driver, s.workload, "stream.driver")
    executor, size = _executor_plan(config, s.executor, s.workload, "stream.executor")
    conf = _common_conf(config, {}, s.workload)
    conf |= _decommission_conf(s.decommission.enabled, s.decommission.fallback_storage)
    conf |= dict(s.spark_conf)
    for key in ("spark.dynamicAllocation.enabled",):
        if conf.get(key, "false").lower() == "true":
            raise LayerError(
                f"stream.sparkConf {key}=true: the streaming job runs a fixed executor count "
                "(SPARK-24815)"
            )
    conf["spark.dynamicAllocation.enabled"] = "false"
    partitions = s.partitions or int(
        conf.get("spark.sql.shuffle.partitions", s.executor.instances * executor.cores)
    )
    args = [
        "stream",
        "--network", config.cluster.network.path,
        "--landing", s.landing,
        "--work", s.work,
        "--field-store", url,
        "--format", s.format,
        "--master", IN_CLUSTER_MASTER,
        "--trigger", s.trigger,
        "--watermark", s.watermark,
        "--clock", s.clock,
        "--horizons", s.horizons,
        "--tile-deg", str(s.tile_deg),
        "--partitions", str(partitions),
        "--metrics-port", str(s.metrics_port),
    ]  # fmt: skip
    if s.format == "kafka":
        if not s.kafka.bootstrap:
            raise LayerError("stream.kafka.bootstrap: the kafka format needs the brokers")
        args += ["--kafka-bootstrap", s.kafka.bootstrap, "--kafka-topic", s.kafka.topic]
    for key, value in sorted(forwarded_session_conf(conf, _session_defaults()).items()):
        args += ["--conf", f"{key}={value}"]
    return JobPlan(
        name=s.name,
        component="stream",
        driver=driver,
        executor=executor,
        instances=s.executor.instances,
        max_executors=s.executor.instances,
        spark_conf=dict(sorted(conf.items())),
        arguments=args,
        sizing=size,
    )


def _session_defaults() -> dict[str, str]:
    """What ``airpath stream``'s session builder sets on a cluster with metrics on."""
    from airpath.pipeline.session import spark_settings

    return spark_settings(app_name="airpath-stream", master=IN_CLUSTER_MASTER, metrics=True)


def _train_plan(config: DeployConfig) -> JobPlan:
    t = config.train
    driver = _driver_plan(config, t.driver, t.workload, "train.driver")
    executor, size = _executor_plan(config, t.executor, t.workload, "train.executor")
    conf = _common_conf(config, {}, t.workload)
    conf |= _decommission_conf(t.decommission.enabled, t.decommission.fallback_storage)
    if t.roll_interval:
        # Replace executors periodically on long runs (memory creep, stragglers); rolling
        # decommissions the chosen executor, so it needs decommissioning on.
        plugins = [p for p in conf.get("spark.plugins", "").split(",") if p]
        conf["spark.plugins"] = ",".join(
            [*plugins, ROLL_PLUGIN] if ROLL_PLUGIN not in plugins else plugins
        )
        conf["spark.kubernetes.executor.rollInterval"] = t.roll_interval
        conf["spark.kubernetes.executor.rollPolicy"] = t.roll_policy
        if not t.decommission.enabled:
            raise LayerError("train.rollInterval needs train.decommission.enabled: true")
    conf |= dict(t.spark_conf)
    arguments = ["train", "--lake", t.lake, "--network", config.cluster.network.path,
                 "--out", t.out, "--master", IN_CLUSTER_MASTER, *t.extra_args]  # fmt: skip
    da = t.dynamic_allocation
    if da.enabled and da.max_executors < max(da.min_executors, 1):
        raise LayerError("train.dynamicAllocation.maxExecutors must be ≥ max(minExecutors, 1)")
    return JobPlan(
        name=t.name,
        component="train",
        driver=driver,
        executor=executor,
        instances=t.executor.instances,
        max_executors=da.max_executors if da.enabled else t.executor.instances,
        spark_conf=dict(sorted(conf.items())),
        arguments=arguments,
        sizing=size,
    )


def _check_fixed_pools(plan: Plan) -> None:
    """On a pool of ``maxNodes`` nodes, everything placed there must fit at once."""
    config = plan.config
    demand: dict[str, list[tuple[str, int, int, int]]] = {}

    def add(pool: str, what: str, count: int, cpu_m: int, mem_mib: int) -> None:
        demand.setdefault(pool, []).append((what, count, cpu_m, mem_mib))

    for job in (plan.stream, plan.train):
        if job is None:
            continue
        add(job.driver.pool, f"{job.name} driver", 1, job.driver.cpu_m, job.driver.memory_mib)
        add(job.executor.pool, f"{job.name} executors", job.max_executors, job.executor.cpu_m,
            job.executor.memory_mib)  # fmt: skip
    r = config.router
    add(r.pool, "router", r.max_replicas, parse_cpu_m(r.resources.cpu),
        parse_memory_mib(r.resources.memory))  # fmt: skip
    for what, cpu, mem in _small_pods(config):
        add(config.stream.driver.pool, what, 1, cpu, mem)
    for name, items in demand.items():
        pool = config.pools[name]
        if pool.max_nodes is None:
            continue
        node = pool.shape()
        cpu = sum(n * c for _, n, c, _ in items)
        mem = sum(n * m for _, n, _, m in items)
        if cpu > pool.max_nodes * node.free_cpu_m or mem > pool.max_nodes * node.free_memory_mib:
            parts = ", ".join(f"{w} {n}×{format_cpu(c)}/{format_memory(m)}" for w, n, c, m in items)
            raise SizingError(
                f"pool {name} ({pool.max_nodes} node(s), {format_cpu(node.free_cpu_m)} CPU and "
                f"{format_memory(node.free_memory_mib)} free each) cannot hold everything "
                f"placed on it at once: {format_cpu(cpu)} CPU, {format_memory(mem)} ({parts})"
            )


def _small_pods(config: DeployConfig) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    redis = config.cluster.redis
    if redis.deploy:
        out.append(
            ("redis", parse_cpu_m(redis.resources.cpu), parse_memory_mib(redis.resources.memory))
        )
    if config.simulator.enabled:
        out.append(("simulator", *SIMULATOR_REQUEST))
    if config.history_server.enabled:
        out.append(("history server", *HISTORY_REQUEST))
    return out


SIMULATOR_REQUEST = (250, 1024)  # millicores, MiB
HISTORY_REQUEST = (100, 1024)
