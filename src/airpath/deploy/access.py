"""Who may do what: the namespace, service accounts, RBAC, network policies, priorities.

* **Least privilege for the driver.** A Spark driver on Kubernetes creates, watches and
  deletes its executor pods, the ConfigMap it hands them and, with on-demand local-dir
  volumes, their PersistentVolumeClaims (`Spark RBAC`_). The Role grants exactly those
  verbs on exactly those resources in this namespace, bound to the driver's service
  account only. Executors and router replicas get accounts without tokens.
* **Network policies.** Ingress to every airpath pod is denied except: Spark pods among
  themselves (driver RPC, block manager and shuffle ports are dynamic), Redis from airpath
  pods, the router's port from anywhere (ingress controllers), and metrics ports from the
  monitoring namespace. Egress is left open: the driver must reach the API server, whose
  address differs per cluster.
* **Priority classes.** The streaming job and the router outrank batch training, which
  never preempts anything (``preemptionPolicy: Never``): a late model is acceptable, a
  stale field is not.

.. _Spark RBAC: https://spark.apache.org/docs/latest/running-on-kubernetes.html#rbac
"""

from __future__ import annotations

from typing import Any

from airpath.deploy.resolve import PART_OF, Plan

SPARK_ROLE_LABEL = "spark-role"  # set by Spark on driver and executor pods
MONITORING_NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def namespace(plan: Plan) -> dict[str, Any]:
    ns = plan.config.namespace
    level = ns.pod_security
    labels = dict(ns.labels) | {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "app.kubernetes.io/part-of": PART_OF,
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns.name, "labels": labels},
    }


def _meta(plan: Plan, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": plan.namespace, "labels": plan.labels(component, name)}


def _driver_accounts(plan: Plan) -> list[str]:
    jobs = [j for j in (plan.stream, plan.train) if j is not None]
    return sorted({j.driver.service_account for j in jobs})


def service_accounts(plan: Plan) -> list[dict[str, Any]]:
    jobs = [j for j in (plan.stream, plan.train) if j is not None]
    drivers = set(_driver_accounts(plan))
    others = {j.executor.service_account for j in jobs} | {plan.config.router.service_account}
    out = []
    for name in sorted(drivers | others):
        sa: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(plan, name, "spark" if name in drivers else "access"),
        }
        if name not in drivers:
            sa["automountServiceAccountToken"] = False
        out.append(sa)
    return out


def driver_role(plan: Plan) -> dict[str, Any]:
    watch = ["get", "list", "watch"]
    manage = [*watch, "create", "delete", "deletecollection"]
    rules: list[dict[str, Any]] = [
        # patch: decommissioning and executor rolling label the pods they retire.
        {"apiGroups": [""], "resources": ["pods"], "verbs": [*manage, "patch"]},
        {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": manage},
    ]
    if plan.config.cluster.storage.local_dir_size:
        rules.append({"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": manage})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(plan, "airpath-spark-driver", "spark"),
        "rules": rules,
    }


def driver_role_binding(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(plan, "airpath-spark-driver", "spark"),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "airpath-spark-driver",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": name, "namespace": plan.namespace}
            for name in _driver_accounts(plan)
        ],
    }


def priority_classes(plan: Plan) -> list[dict[str, Any]]:
    classes = plan.config.cluster.priority_classes
    labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "airpath"}
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": classes.streaming, "labels": labels},
            "value": classes.streaming_value,
            "globalDefault": False,
            "preemptionPolicy": "PreemptLowerPriority",
            "description": "airpath streaming job and router: keep the live field fresh",
        },
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": classes.batch, "labels": labels},
            "value": classes.batch_value,
            "globalDefault": False,
            "preemptionPolicy": "Never",
            "description": "airpath nightly training: waits for room, never preempts",
        },
    ]


def _policy(plan: Plan, name: str, selector: dict[str, Any], ingress: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(plan, name, "access"),
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def network_policies(plan: Plan) -> list[dict[str, Any]]:
    config = plan.config
    ours = {"app.kubernetes.io/part-of": PART_OF}
    spark = {
        "matchLabels": ours,
        "matchExpressions": [{"key": SPARK_ROLE_LABEL, "operator": "Exists"}],
    }
    policies = [
        _policy(plan, "airpath-default-deny", {"matchLabels": ours}, []),
        _policy(plan, "airpath-spark", spark, [{"from": [{"podSelector": spark}]}]),
        _policy(
            plan,
            "airpath-router",
            {"matchLabels": {**ours, "app.kubernetes.io/component": "router"}},
            [{"ports": [{"protocol": "TCP", "port": config.router.port}]}],
        ),
    ]
    if config.cluster.redis.deploy:
        policies.append(
            _policy(
                plan,
                "airpath-redis",
                {"matchLabels": {**ours, "app.kubernetes.io/component": "redis"}},
                [
                    {
                        "from": [{"podSelector": {"matchLabels": ours}}],
                        "ports": [{"protocol": "TCP", "port": 6379}],
                    }
                ],
            )
        )
    if config.history_server.enabled:
        policies.append(
            _policy(
                plan,
                "airpath-history",
                {"matchLabels": {**ours, "app.kubernetes.io/component": "history"}},
                [{"ports": [{"protocol": "TCP", "port": config.history_server.port}]}],
            )
        )
    monitoring = config.cluster.monitoring
    if monitoring.enabled:
        ports = [
            {"protocol": "TCP", "port": config.stream.metrics_port},
            {"protocol": "TCP", "port": 4040},  # Spark UI: PrometheusServlet
            {"protocol": "TCP", "port": config.router.port},
        ]
        policies.append(
            _policy(
                plan,
                "airpath-metrics",
                {"matchLabels": ours},
                [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {
                                        MONITORING_NAMESPACE_LABEL: monitoring.namespace
                                    }
                                }
                            }
                        ],
                        "ports": ports,
                    }
                ],
            )
        )
    return policies


def access_resources(plan: Plan) -> list[dict[str, Any]]:
    return [
        namespace(plan),
        *priority_classes(plan),
        *service_accounts(plan),
        driver_role(plan),
        driver_role_binding(plan),
        *network_policies(plan),
    ]
