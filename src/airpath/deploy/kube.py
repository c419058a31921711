"""A small Kubernetes client over the official ``kubernetes`` package's REST layer.

Five verbs, for the kinds airpath renders: server-side **apply**, **get**, **list**,
**delete**, and the **logs** of a container. Requests go through
``ApiClient.param_serialize`` and ``ApiClient.call_api`` of the official client (its
authentication, TLS and proxy handling from the kubeconfig), so that a test can swap the
transport underneath (:mod:`.kubefake`) and exercise everything above it.

Server-side apply (``PATCH`` with ``application/apply-patch+yaml``, field manager
``airpath``) rather than client-side apply: the Spark Operator's CRDs are large enough
that client-side apply's ``last-applied-configuration`` annotation exceeds the 256 KiB
annotation limit, and the API server then tracks field ownership, so a conflict with
another manager (an HPA, a person with kubectl) is reported instead of silently undone.
``force=True`` takes the fields over (``--force-conflicts``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from airpath.deploy.errors import ClusterError, KubeconfigError

FIELD_MANAGER = "airpath"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the REST API."""

    api_version: str  # "apps/v1", "v1"
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise ClusterError(f"{self.kind} is namespaced: a namespace is needed")
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


_KINDS = [
    Kind("v1", "Namespace", "namespaces", namespaced=False),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
    Kind("v1", "Service", "services"),
    Kind("v1", "ConfigMap", "configmaps"),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Kind("v1", "Pod", "pods"),
    Kind("v1", "Event", "events"),
    Kind("apps/v1", "Deployment", "deployments"),
    Kind("batch/v1", "Job", "jobs"),
    Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    Kind("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", namespaced=False),
    Kind("sparkoperator.k8s.io/v1beta2", "SparkApplication", "sparkapplications"),
    Kind("sparkoperator.k8s.io/v1beta2", "ScheduledSparkApplication", "scheduledsparkapplications"),
    Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors"),
    Kind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
    Kind("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
]
KINDS: dict[str, Kind] = {k.kind: k for k in _KINDS}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    kind = KINDS.get(str(obj.get("kind")))
    if kind is None or kind.api_version != obj.get("apiVersion"):
        raise ClusterError(f"airpath does not manage {obj.get('apiVersion')} {obj.get('kind')}")
    return kind


class KubeClient:
    """apply / get / list / delete / logs over an official ``ApiClient``."""

    def __init__(self, api: ApiClient, *, field_manager: str = FIELD_MANAGER) -> None:
        self.api = api
        self.field_manager = field_manager

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> tuple[int, bytes]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request)
            data = response.read() or b""  # type: ignore[no-untyped-call]
        except Exception as exc:  # urllib3/SSL/connection errors of any kind
            raise ClusterError(
                f"cannot reach the Kubernetes API ({type(exc).__name__}: {exc})"
            ) from None
        return int(response.status), data if isinstance(data, bytes) else str(data).encode()

    @staticmethod
    def _message(status: int, data: bytes) -> str:
        try:
            body = json.loads(data)
            return f"{body.get('reason', status)}: {body.get('message', '')}".strip()
        except (ValueError, AttributeError):
            return f"HTTP {status}: {data[:200].decode(errors='replace')}"

    def apply(
        self, obj: Mapping[str, Any], *, force: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply ``obj``; returns the object as the server now holds it."""
        kind = kind_of(obj)
        meta = obj.get("metadata", {})
        # Strict: the server refuses unknown or duplicate fields instead of dropping them
        # (CRDs prune unknown fields silently otherwise).
        query = [("fieldManager", self.field_manager), ("fieldValidation", "Strict")]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        status, data = self._call(
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"]),
            query,
            body=obj,  # sent as JSON, which is YAML: a valid apply-patch+yaml body
            content_type=APPLY_PATCH,
        )
        what = f"{kind.kind} {meta['name']}"
        if status == 409:
            raise ClusterError(
                f"{what}: fields owned by another manager ({self._message(status, data)}); "
                "re-run with --force-conflicts to take them over"
            )
        if status == 404:
            raise ClusterError(
                f"{what}: {self._message(status, data)} (is the namespace applied, and the CRD "
                f"of {kind.api_version} {kind.plural} installed?)"
            )
        if status == 422 and kind.kind == "Job":
            component = meta.get("labels", {}).get("app.kubernetes.io/component", "simulator")
            raise ClusterError(
                f"{what}: a Job's pod template cannot change; delete it first "
                f"(airpath k8s delete --component {component})"
            )
        if not 200 <= status < 300:
            raise ClusterError(f"{what}: {self._message(status, data)}")
        result: dict[str, Any] = json.loads(data)
        return result

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        status, data = self._call("GET", kind.path(namespace, name))
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise ClusterError(f"get {kind.kind} {name}: {self._message(status, data)}")
        result: dict[str, Any] = json.loads(data)
        return result

    def list(
        self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        status, data = self._call("GET", kind.path(namespace), query)
        if status == 404:
            return []
        if not 200 <= status < 300:
            raise ClusterError(f"list {kind.plural}: {self._message(status, data)}")
        items: list[dict[str, Any]] = json.loads(data).get("items", [])
        return items

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool:
        """Delete in the background (dependents are garbage-collected); False if absent."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        status, data = self._call(
            "DELETE", kind.path(namespace, name), body=body, content_type="application/json"
        )
        if status == 404:
            return False
        if not 200 <= status < 300:
            raise ClusterError(f"delete {kind.kind} {name}: {self._message(status, data)}")
        return True

    def logs(
        self,
        pod: str,
        namespace: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> str | None:
        """A container's log, or ``None`` when the pod does not exist."""
        query: list[tuple[str, str]] = []
        if container:
            query.append(("container", container))
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        if previous:
            query.append(("previous", "true"))
        status, data = self._call(
            "GET", KINDS["Pod"].path(namespace, pod, "log"), query, accept="text/plain"
        )
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise ClusterError(f"logs of pod {pod}: {self._message(status, data)}")
        return data.decode(errors="replace")


def connect_kubeconfig(kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
    """A client from a kubeconfig file (``KUBECONFIG`` or ``~/.kube/config``), or the
    in-cluster service account when running in a pod."""
    import os

    from kubernetes import config

    try:
        if (
            kubeconfig is None
            and "KUBERNETES_SERVICE_HOST" in os.environ
            and not os.path.exists(
                os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config"))
            )
        ):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return KubeClient(ApiClient())
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
    except config.ConfigException as exc:
        raise KubeconfigError(f"no usable kubeconfig: {exc}") from None
    except FileNotFoundError as exc:
        raise KubeconfigError(f"no kubeconfig at {exc.filename}") from None
    return KubeClient(api)
