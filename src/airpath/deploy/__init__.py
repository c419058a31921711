"""Kubernetes deployment of airpath: layered configuration, executor sizing, manifests,
validation, and a small client to operate the result.

Stages, one module each::

    layers/*.yaml ─► layers.py (merge, provenance) ─► config.py (typed) ─► resolve.py
      (computed defaults, sizing.py) ─► access/services/router/spark/monitoring.py
      (manifests) ─► validate.py ─► rendering.py (files) ─► kube.py + ops.py (apply,
      status, logs, delete), kubefake.py (the in-memory API server for tests)

``airpath k8s …`` (:mod:`.cli`) is the command line over these.

    >>> from airpath.deploy import render
    >>> rendered = render("dev")
    >>> sorted({m["kind"] for m in rendered.manifests})[:3]
    ['ConfigMap', 'Deployment', 'Job']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpath.deploy.errors import (
        ClusterError,
        DeployError,
        KubeconfigError,
        LayerError,
        ManifestError,
        SizingError,
    )
    from airpath.deploy.kube import KubeClient, connect_kubeconfig
    from airpath.deploy.kubefake import FakeCluster
    from airpath.deploy.rendering import Rendered, render, write
    from airpath.deploy.sizing import ExecutorSize, NodeShape, size_executors

# Imported on first use (PEP 562): `airpath k8s` is one subcommand among many, and the
# Kubernetes client, schemas and models should not slow down every `airpath` start.
_SOURCES = {
    "ClusterError": "errors",
    "DeployError": "errors",
    "KubeconfigError": "errors",
    "LayerError": "errors",
    "ManifestError": "errors",
    "SizingError": "errors",
    "KubeClient": "kube",
    "connect_kubeconfig": "kube",
    "FakeCluster": "kubefake",
    "Rendered": "rendering",
    "render": "rendering",
    "write": "rendering",
    "ExecutorSize": "sizing",
    "NodeShape": "sizing",
    "size_executors": "sizing",
}

__all__ = [
    "ClusterError",
    "DeployError",
    "ExecutorSize",
    "FakeCluster",
    "KubeClient",
    "KubeconfigError",
    "LayerError",
    "ManifestError",
    "NodeShape",
    "Rendered",
    "SizingError",
    "connect_kubeconfig",
    "render",
    "size_executors",
    "write",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'airpath.deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airpath.deploy.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
