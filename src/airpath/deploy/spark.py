"""The Spark Operator resources: the streaming ``SparkApplication`` and the nightly
training ``ScheduledSparkApplication`` (``sparkoperator.k8s.io/v1beta2``).

Choices, and why:

* **Pod templates, not webhook fields.** Tolerations, affinity, priority class, security
  context, volumes and the init container go in ``spec.{driver,executor}.template``. The
  operator's controller writes each template to a file and passes it to
  ``spark-submit`` as ``spark.kubernetes.{driver,executor}.podTemplateFile``; fields such
  as ``spec.executor.tolerations`` are instead applied by the operator's *mutating
  webhook*, which is optional and, when it is down, silently drops them (a driver on a
  spot node). The same templates are also rendered as files in a ConfigMap
  (:func:`pod_template_configmap`) for ``spark-submit`` run by hand.
* **A fixed executor count for streaming.** Dynamic allocation decides from the task
  backlog of batch stages; a micro-batch stream has short bursts and idle gaps, so it
  releases executors between batches and re-requests them, and every released executor
  takes its state-store instances (RocksDB) with it, to be reloaded elsewhere.
  Streaming-aware allocation is still open upstream (SPARK-24815).
* **Graceful decommissioning** (``spark.decommission.enabled``,
  ``spark.storage.decommission.*``): on a spot reclaim the executor's preStop hook signals
  Spark, which migrates shuffle and cached blocks before the pod dies; the executor's
  ``terminationGracePeriodSeconds`` gives it the time (AWS warns 2 minutes ahead).
* **Restart with back-off.** ``restartPolicy: OnFailure`` with retries; the operator waits
  ``attempt × onFailureRetryInterval`` between attempts (a linear back-off).
* **Training** uses dynamic allocation with shuffle tracking (no external shuffle service
  on Kubernetes), and executor rolling when a layer sets ``train.rollInterval``.
"""

from __future__ import annotations

from typing import Any

from airpath.deploy._yaml import dump
from airpath.deploy.config import Restart
from airpath.deploy.pods import (
    DRIVER_CONTAINER,
    EXECUTOR_CONTAINER,
    container_security,
    placement,
    pod_security,
    work_volumes,
)
from airpath.deploy.resolve import MAIN_FILE, REDIS_PASSWORD_ENV, JobPlan, Plan

API_VERSION = "sparkoperator.k8s.io/v1beta2"


def _restart(r: Restart) -> dict[str, Any]:
    return {
        "type": "OnFailure",
        "onFailureRetries": r.on_failure_retries,
        "onFailureRetryInterval": r.on_failure_retry_interval,
        "onSubmissionFailureRetries": r.on_submission_failure_retries,
        "onSubmissionFailureRetryInterval": r.on_submission_failure_retry_interval,
    }


def _local_dirs(plan: Plan, job: JobPlan) -> list[str]:
    """Directories on the work volume that must exist before Spark starts (the event
    log directory above all: Spark refuses to start without it)."""
    mount = plan.config.cluster.storage.work_mount.rstrip("/") + "/"
    candidates = [
        job.spark_conf.get("spark.eventLog.dir", ""),
        job.spark_conf.get("spark.storage.decommission.fallbackStorage.path", ""),
    ]
    if job.component == "stream":
        candidates += [plan.config.stream.work, plan.config.stream.landing]
    else:
        candidates += [plan.config.train.out]
    dirs = []
    for c in candidates:
        path = c.removeprefix("file://")
        if path.startswith(mount) and path not in dirs:
            dirs.append(path.rstrip("/"))
    return dirs


def _priority(plan: Plan, job: JobPlan) -> str:
    classes = plan.config.cluster.priority_classes
    return classes.streaming if job.component == "stream" else classes.batch


def driver_template(plan: Plan, job: JobPlan) -> dict[str, Any]:
    """The driver's pod template (see the module doc for why a template)."""
    config = plan.config
    image = job.driver.image or config.cluster.image
    volumes, mounts = work_volumes(config)
    container: dict[str, Any] = {
        "name": DRIVER_CONTAINER,
        "volumeMounts": mounts,
        "securityContext": container_security(),
    }
    if job.component == "stream":
        container["ports"] = [
            {"name": "metrics", "containerPort": config.stream.metrics_port, "protocol": "TCP"}
        ]
    secret = config.cluster.redis.password_secret
    if secret is not None:
        container["env"] = [
            {
                "name": REDIS_PASSWORD_ENV,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        ]
    spec: dict[str, Any] = {
        "priorityClassName": _priority(plan, job),
        "securityContext": pod_security(),
        **placement(plan.pool(job.driver.pool), required=True),
        "initContainers": [
            {
                "name": "airpath-dirs",
                "image": image,
                "command": ["mkdir", "-p", *_local_dirs(plan, job)],
                "volumeMounts": mounts,
                "securityContext": container_security(read_only_root=True),
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "64Mi"},
                },
            }
        ],
        "containers": [container],
        "volumes": volumes,
    }
    return {"metadata": {"labels": plan.labels(job.component, job.name)}, "spec": spec}


def executor_template(plan: Plan, job: JobPlan) -> dict[str, Any]:
    """The executors' pod template: spot-tolerant when their pool is spot."""
    config = plan.config
    pool = plan.pool(job.executor.pool)
    volumes, mounts = work_volumes(config)
    decommission = (
        config.stream.decommission if job.component == "stream" else config.train.decommission
    )
    spec: dict[str, Any] = {
        "priorityClassName": _priority(plan, job),
        "securityContext": pod_security(),
        **placement(pool, required=not pool.spot),
        # Executors never call the Kubernetes API: no token in their pods.
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": decommission.grace_period_seconds,
        "containers": [
            {
                "name": EXECUTOR_CONTAINER,
                "volumeMounts": mounts,
                "securityContext": container_security(),
            }
        ],
        "volumes": volumes,
    }
    return {"metadata": {"labels": plan.labels(job.component, job.name)}, "spec": spec}


def application_spec(plan: Plan, job: JobPlan) -> dict[str, Any]:
    """The ``SparkApplicationSpec`` of ``job`` (also the template of a scheduled one)."""
    config = plan.config
    cluster = config.cluster
    restart = config.stream.restart if job.component == "stream" else config.train.restart
    spec: dict[str, Any] = {
        "type": "Python",
        "mode": "cluster",
        "sparkVersion": cluster.spark_version,
        "image": (config.stream.image if job.component == "stream" else config.train.image)
        or cluster.image,
        "imagePullPolicy": cluster.image_pull_policy,
        "mainApplicationFile": MAIN_FILE,
        "arguments": list(job.arguments),
        "sparkConf": dict(job.spark_conf),
        "restartPolicy": _restart(restart),
        "driver": _pod_spec(job, "driver") | {"template": driver_template(plan, job)},
        "executor": _pod_spec(job, "executor")
        | {"instances": job.instances, "template": executor_template(plan, job)},
    }
    if cluster.image_pull_secrets:
        spec["imagePullSecrets"] = list(cluster.image_pull_secrets)
    scheduler = cluster.batch_scheduler
    if scheduler.name:
        # Gang scheduling: the driver and its executors are admitted together or not at
        # all, so a half-started application never holds nodes others wait for.
        spec["batchScheduler"] = scheduler.name
        options: dict[str, Any] = {}
        if scheduler.queue:
            options["queue"] = scheduler.queue
        if scheduler.name == "volcano":
            options["priorityClassName"] = _priority(plan, job)
        if options:
            spec["batchSchedulerOptions"] = options
    if job.component == "train":
        da = config.train.dynamic_allocation
        if da.enabled:
            dynamic: dict[str, Any] = {
                "enabled": True,
                "minExecutors": da.min_executors,
                "maxExecutors": da.max_executors,
                "shuffleTrackingEnabled": da.shuffle_tracking,
            }
            if da.initial_executors is not None:
                dynamic["initialExecutors"] = da.initial_executors
            spec["dynamicAllocation"] = dynamic
    return spec


def _pod_spec(job: JobPlan, role: str) -> dict[str, Any]:
    pod = job.driver if role == "driver" else job.executor
    out: dict[str, Any] = {
        "cores": pod.cores,  # spark.{driver,executor}.cores
        "coreRequest": pod.core_request,  # spark.kubernetes.*.request.cores
        "memory": pod.memory,  # spark.{driver,executor}.memory
        "memoryOverhead": pod.memory_overhead,  # spark.{driver,executor}.memoryOverhead
        "serviceAccount": pod.service_account,
    }
    if pod.core_limit:
        out["coreLimit"] = pod.core_limit
    if pod.image:
        out["image"] = pod.image
    return out


def spark_application(plan: Plan) -> dict[str, Any]:
    """The streaming job."""
    job = plan.stream
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {
            "name": job.name,
            "namespace": plan.namespace,
            "labels": plan.labels("stream", job.name),
        },
        "spec": application_spec(plan, job),
    }


def scheduled_spark_application(plan: Plan) -> dict[str, Any] | None:
    """The nightly training job (``concurrencyPolicy: Forbid``: a slow night never
    overlaps the next run), or ``None`` when training is off."""
    job = plan.train
    if job is None:
        return None
    train = plan.config.train
    return {
        "apiVersion": API_VERSION,
        "kind": "ScheduledSparkApplication",
        "metadata": {
            "name": job.name,
            "namespace": plan.namespace,
            "labels": plan.labels("train", job.name),
        },
        "spec": {
            "schedule": train.schedule,
            "timeZone": train.time_zone,
            "concurrencyPolicy": train.concurrency_policy,
            "successfulRunHistoryLimit": train.successful_run_history_limit,
            "failedRunHistoryLimit": train.failed_run_history_limit,
            "template": application_spec(plan, job),
        },
    }


def pod_template_configmap(plan: Plan) -> dict[str, Any]:
    """The same pod templates as files (``spark.kubernetes.*.podTemplateFile``), for
    ``spark-submit`` run outside the operator, e.g. from a toolbox pod mounting this."""
    data: dict[str, str] = {}
    for job in (plan.stream, plan.train):
        if job is None:
            continue
        for role, template in (
            ("driver", driver_template(plan, job)),
            ("executor", executor_template(plan, job)),
        ):
            pod = {"apiVersion": "v1", "kind": "Pod", **template}
            data[f"{job.component}-{role}.yaml"] = dump(pod)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "airpath-pod-templates",
            "namespace": plan.namespace,
            "labels": plan.labels("spark", "airpath-pod-templates"),
        },
        "data": data,
    }
