"""Pod-level pieces shared by every workload: security contexts, placement, volumes.

Placement follows the pools (see ``layers/base/pools.yaml``): a pod that must not lose
its node (the Spark driver: losing it kills the application) *requires* its pool's
labels; a pod that may run on spot capacity *prefers* the spot pool and tolerates its
taints, so it still schedules on on-demand nodes when spot capacity is short.

Every container runs as the image's non-root user (uid 185, Spark's convention) with no
privilege escalation, all capabilities dropped and the runtime's seccomp profile, which
is what the ``restricted`` Pod Security Standard asks for.
"""

from __future__ import annotations

from typing import Any

from airpath.deploy.config import DeployConfig, Pool

UID = 185
DRIVER_CONTAINER = "spark-kubernetes-driver"  # the names the operator gives Spark
EXECUTOR_CONTAINER = "spark-kubernetes-executor"
WORK_VOLUME = "airpath-work"
NETWORK_VOLUME = "airpath-network"


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,  # volumes group-writable for the Spark user
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(read_only_root: bool = False) -> dict[str, Any]:
    sc: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    if read_only_root:
        sc["readOnlyRootFilesystem"] = True
    return sc


def placement(pool: Pool, *, required: bool) -> dict[str, Any]:
    """``affinity`` and ``tolerations`` for a pod on ``pool`` (empty if unlabelled)."""
    out: dict[str, Any] = {}
    if pool.node_labels:
        terms = [
            {"key": k, "operator": "In", "values": [v]} for k, v in sorted(pool.node_labels.items())
        ]
        node_affinity: dict[str, Any]
        if required:
            node_affinity = {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": terms}]
                }
            }
        else:
            node_affinity = {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "preference": {"matchExpressions": terms}}
                ]
            }
        out["affinity"] = {"nodeAffinity": node_affinity}
    if pool.taints:
        out["tolerations"] = [
            {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            if t.value
            else {"key": t.key, "operator": "Exists", "effect": t.effect}
            for t in pool.taints
        ]
    return out


def work_volumes(config: DeployConfig, *, read_only: bool = False) -> tuple[list[Any], list[Any]]:
    """(volumes, volumeMounts) for the shared work PVC and, if any, the network PVC."""
    storage = config.cluster.storage
    volumes: list[Any] = [
        {"name": WORK_VOLUME, "persistentVolumeClaim": {"claimName": storage.work_claim}}
    ]
    mounts: list[Any] = [{"name": WORK_VOLUME, "mountPath": storage.work_mount}]
    if read_only:
        mounts[0]["readOnly"] = True
    network = config.cluster.network
    if network.claim_name:
        volumes.append(
            {
                "name": NETWORK_VOLUME,
                "persistentVolumeClaim": {"claimName": network.claim_name, "readOnly": True},
            }
        )
        mounts.append({"name": NETWORK_VOLUME, "mountPath": network.path, "readOnly": True})
    return volumes, mounts


def tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """A writable /tmp for read-only root filesystems (numba's cache lives there)."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "tmp", "mountPath": "/tmp"}


def image_pull_secrets(config: DeployConfig) -> list[dict[str, str]]:
    return [{"name": s} for s in config.cluster.image_pull_secrets]
