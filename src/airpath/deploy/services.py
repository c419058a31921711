"""The supporting pieces: the work volume, Redis, the simulator and the history server.

* **Work volume.** One PersistentVolumeClaim holds the streaming job's checkpoints (Spark
  offsets and commits, the RocksDB state store's changelogs and snapshots), the lake, the
  dead letters, Spark's event logs and the landing directory. The driver *and* the
  executors write it (state-store files are written by the executors), so on more than
  one node it must be ``ReadWriteMany`` (EFS, Filestore, Azure Files, CephFS, NFS); dev's
  single node works with ``ReadWriteOnce``.
* **Redis** for the field store: snapshots are recomputed every micro-batch, so there is
  no persistence (``--save ""``, no AOF); ``noeviction`` so a full Redis refuses a publish
  (the job counts a publish failure) instead of evicting the snapshot routers read. Set
  ``cluster.redis.deploy: false`` and ``url`` to use a managed Redis instead.
* **Simulator** (dev): a Job running ``airpath simulate`` into the landing directory so a
  fresh cluster has readings to stream.
* **History server** (optional): Spark's own, reading the event logs from the work volume.
"""

from __future__ import annotations

from typing import Any

from airpath.deploy.pods import (
    container_security,
    image_pull_secrets,
    placement,
    pod_security,
    tmp_volume,
    work_volumes,
)
from airpath.deploy.quantity import parse_memory_mib
from airpath.deploy.resolve import HISTORY_REQUEST, REDIS_PASSWORD_ENV, SIMULATOR_REQUEST, Plan
from airpath.deploy.router import AIRPATH

REDIS_UID = 999  # the redis user of the official image


def _meta(plan: Plan, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": plan.namespace, "labels": plan.labels(component, name)}


def work_claim(plan: Plan) -> dict[str, Any]:
    storage = plan.config.cluster.storage
    spec: dict[str, Any] = {
        "accessModes": [storage.work_access_mode],
        "resources": {"requests": {"storage": storage.work_size}},
    }
    if storage.work_storage_class:
        spec["storageClassName"] = storage.work_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(plan, storage.work_claim, "storage"),
        "spec": spec,
    }


def _selector(plan: Plan, name: str, component: str) -> dict[str, str]:
    labels = plan.labels(component, name)
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of")}


def redis(plan: Plan) -> list[dict[str, Any]]:
    config = plan.config
    r = config.cluster.redis
    if not r.deploy:
        return []
    name = "airpath-redis"
    max_mib = parse_memory_mib(r.resources.memory) * 4 // 5  # headroom for buffers
    args = ["--save", "", "--appendonly", "no", "--maxmemory", f"{max_mib}mb",
            "--maxmemory-policy", "noeviction"]  # fmt: skip
    container: dict[str, Any] = {
        "name": "redis",
        "image": r.image,
        "args": args,
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": r.resources.cpu, "memory": r.resources.memory},
            "limits": {"memory": r.resources.memory},
        },
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    if r.password_secret is not None:
        container["args"] = [*args, "--requirepass", f"$({REDIS_PASSWORD_ENV})"]
        container["env"] = [
            {
                "name": REDIS_PASSWORD_ENV,
                "valueFrom": {
                    "secretKeyRef": {"name": r.password_secret.name, "key": r.password_secret.key}
                },
            }
        ]
    security = pod_security() | {
        "runAsUser": REDIS_UID,
        "runAsGroup": REDIS_UID,
        "fsGroup": REDIS_UID,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan, name, "redis"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector(plan, name, "redis")},
            "template": {
                "metadata": {"labels": plan.labels("redis", name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "priorityClassName": config.cluster.priority_classes.streaming,
                    "securityContext": security,
                    **placement(plan.pool(config.stream.driver.pool), required=True),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan, name, "redis"),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(plan, name, "redis"),
            "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def simulator(plan: Plan) -> list[dict[str, Any]]:
    config = plan.config
    sim = config.simulator
    if not sim.enabled:
        return []
    volumes, mounts = work_volumes(config)
    tmp, tmp_mount = tmp_volume()
    cpu_m, mem_mib = SIMULATOR_REQUEST
    pod: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        **placement(plan.pool(config.stream.driver.pool), required=True),
        "containers": [
            {
                "name": "simulate",
                "image": config.cluster.image,
                "imagePullPolicy": config.cluster.image_pull_policy,
                "command": [AIRPATH],
                "args": [
                    "simulate",
                    "--network",
                    config.cluster.network.path,
                    "--out",
                    sim.out,
                    "--duration",
                    sim.duration,
                    "--speed",
                    str(sim.speed),
                    "--seed",
                    str(sim.seed),
                ],
                "resources": {
                    "requests": {"cpu": f"{cpu_m}m", "memory": f"{mem_mib}Mi"},
                    "limits": {"memory": f"{mem_mib}Mi"},
                },
                "securityContext": container_security(read_only_root=True),
                "volumeMounts": [*mounts, tmp_mount],
            }
        ],
        "volumes": [*volumes, tmp],
    }
    if config.cluster.image_pull_secrets:
        pod["imagePullSecrets"] = image_pull_secrets(config)
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _meta(plan, "airpath-simulator", "simulator"),
            "spec": {
                "backoffLimit": 3,
                "template": {
                    "metadata": {"labels": plan.labels("simulator", "airpath-simulator")},
                    "spec": pod,
                },
            },
        }
    ]


def history_server(plan: Plan) -> list[dict[str, Any]]:
    config = plan.config
    hs = config.history_server
    if not hs.enabled:
        return []
    name = "airpath-history"
    log_dir = plan.stream.spark_conf.get(
        "spark.eventLog.dir", "file:///var/lib/airpath/spark-events"
    )
    volumes, mounts = work_volumes(config, read_only=True)
    tmp, tmp_mount = tmp_volume()
    cpu_m, mem_mib = HISTORY_REQUEST
    container = {
        "name": "history",
        "image": config.cluster.image,
        "imagePullPolicy": config.cluster.image_pull_policy,
        "command": ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.history.HistoryServer"],
        "env": [
            {
                "name": "SPARK_HISTORY_OPTS",
                "value": f"-Dspark.history.fs.logDirectory={log_dir} "
                f"-Dspark.history.ui.port={hs.port}",
            }
        ],
        "ports": [{"name": "http", "containerPort": hs.port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": f"{cpu_m}m", "memory": f"{mem_mib}Mi"},
            "limits": {"memory": f"{mem_mib}Mi"},
        },
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": [*mounts, tmp_mount],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan, name, "history"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _selector(plan, name, "history")},
            "template": {
                "metadata": {"labels": plan.labels("history", name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    **placement(plan.pool(config.stream.driver.pool), required=False),
                    "containers": [container],
                    "volumes": [*volumes, tmp],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan, name, "history"),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(plan, name, "history"),
            "ports": [{"name": "http", "port": hs.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def service_resources(plan: Plan) -> list[dict[str, Any]]:
    return [work_claim(plan), *redis(plan), *simulator(plan), *history_server(plan)]
