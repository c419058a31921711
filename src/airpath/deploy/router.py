"""The router: stateless ``airpath serve`` replicas behind a Service, autoscaled.

* Probes: ``/readyz`` gates traffic (the API answers it once a network and a field are
  loaded), ``/healthz`` restarts a wedged process; a startup probe gives the first load
  (graph arrays, numba compilation) up to five minutes before liveness counts.
* No ``spec.replicas`` when the HorizontalPodAutoscaler owns the count: applying a fixed
  number would fight the autoscaler on every apply.
* A PodDisruptionBudget keeps ``minAvailable`` replicas through node drains and spot
  reclaims; replicas spread over nodes so one node loss is one replica.
* Non-root, read-only root filesystem, a small ``/tmp`` for numba's cache, no API token.
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
from airpath.deploy.resolve import REDIS_PASSWORD_ENV, Plan

AIRPATH = "/opt/venv/bin/airpath"  # the console script in the image (deploy/Dockerfile)


def _selector(plan: Plan) -> dict[str, str]:
    labels = plan.labels("router", plan.config.router.name)
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of")}


def _autoscaled(plan: Plan) -> bool:
    r = plan.config.router
    return r.max_replicas > r.min_replicas


def deployment(plan: Plan) -> dict[str, Any]:
    config = plan.config
    r = config.router
    tmp, tmp_mount = tmp_volume()
    volumes, mounts = [tmp], [tmp_mount]
    if config.cluster.network.claim_name:
        net_volumes, net_mounts = work_volumes(config)
        volumes += net_volumes[1:]
        mounts += net_mounts[1:]
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "timeoutSeconds": 2}
    container: dict[str, Any] = {
        "name": "router",
        "image": config.cluster.image,
        "imagePullPolicy": config.cluster.image_pull_policy,
        "command": [AIRPATH],
        "args": [
            "serve",
            "--network",
            config.cluster.network.path,
            "--field-store",
            plan.field_store_url,
            "--port",
            str(r.port),
        ],
        "ports": [{"name": "http", "containerPort": r.port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": probe | {"periodSeconds": 10, "failureThreshold": 3},
        "startupProbe": probe | {"periodSeconds": 5, "failureThreshold": 60},
        "resources": {
            "requests": {"cpu": r.resources.cpu, "memory": r.resources.memory},
            # A memory limit equal to the request (no surprise OOM kills from neighbours);
            # no CPU limit (throttling raises route latency, idle CPU is better shared).
            "limits": {"memory": r.resources.memory},
        },
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": mounts,
    }
    secret = config.cluster.redis.password_secret
    if secret is not None:
        container["env"] = [
            {
                "name": REDIS_PASSWORD_ENV,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        ]
    pod_spec: dict[str, Any] = {
        "serviceAccountName": r.service_account,
        "automountServiceAccountToken": False,
        "priorityClassName": config.cluster.priority_classes.streaming,
        "securityContext": pod_security(),
        **placement(plan.pool(r.pool), required=False),
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": _selector(plan)},
            }
        ],
        "containers": [container],
        "volumes": volumes,
    }
    if config.cluster.image_pull_secrets:
        pod_spec["imagePullSecrets"] = image_pull_secrets(config)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": _selector(plan)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {"metadata": {"labels": plan.labels("router", r.name)}, "spec": pod_spec},
    }
    if not _autoscaled(plan):
        spec["replicas"] = r.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan),
        "spec": spec,
    }


def _meta(plan: Plan) -> dict[str, Any]:
    r = plan.config.router
    return {"name": r.name, "namespace": plan.namespace, "labels": plan.labels("router", r.name)}


def service(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(plan),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(plan: Plan) -> dict[str, Any] | None:
    r = plan.config.router
    if not _autoscaled(plan):
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(plan),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": r.name},
            "minReplicas": r.min_replicas,
            "maxReplicas": r.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": r.target_cpu_utilization,
                        },
                    },
                }
            ],
            # Scale up at once, down after 5 min of calm: route traffic is bursty.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def disruption_budget(plan: Plan) -> dict[str, Any] | None:
    r = plan.config.router
    if r.min_available < 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(plan),
        "spec": {"minAvailable": r.min_available, "selector": {"matchLabels": _selector(plan)}},
    }


def router_resources(plan: Plan) -> list[dict[str, Any]]:
    out = [deployment(plan), service(plan), autoscaler(plan), disruption_budget(plan)]
    return [m for m in out if m is not None]
