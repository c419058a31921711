"""Layers in, manifests out: the one source of every Kubernetes object airpath deploys.

``render(overlay)`` loads the layers, merges them, parses the typed configuration,
resolves the computed defaults, builds each manifest and validates it. Files are written
one resource per file, numbered in apply order (namespace and cluster-scoped objects
first, the Spark applications after everything they use), so ``kubectl apply -f DIR``
works as well as ``airpath k8s apply``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from airpath.deploy._yaml import dump
from airpath.deploy.access import access_resources
from airpath.deploy.config import DeployConfig, parse_config
from airpath.deploy.errors import LayerError
from airpath.deploy.layers import Merged, load_layers, merge_layers
from airpath.deploy.monitoring import monitoring_resources
from airpath.deploy.resolve import Plan, resolve
from airpath.deploy.router import router_resources
from airpath.deploy.services import service_resources
from airpath.deploy.spark import (
    pod_template_configmap,
    scheduled_spark_application,
    spark_application,
)
from airpath.deploy.validate import validate_all
from airpath.errors import SimulationError

_RENDERED = re.compile(r"^\d{2}-[a-z0-9]+-[a-z0-9.-]+\.yaml$")


@dataclass(frozen=True)
class Rendered:
    """The manifests of one overlay, with the plan and merge that produced them."""

    overlay: str
    merged: Merged
    plan: Plan
    manifests: list[dict[str, Any]]

    @property
    def config(self) -> DeployConfig:
        return self.plan.config

    def files(self) -> dict[str, str]:
        """File name → YAML, one resource per file, numbered in apply order."""
        out = {}
        for i, obj in enumerate(self.manifests):
            name = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
            out[name] = dump(obj)
        return out

    def stream(self) -> str:
        """All manifests as one multi-document YAML stream."""
        return "---\n".join(dump(obj) for obj in self.manifests)


def duration_s(text: str, what: str) -> float:
    from airpath.sensors.clock import parse_duration_s

    try:
        return parse_duration_s(text)
    except SimulationError:
        raise LayerError(f"{what}: not a duration (30s, 10min, 1h): {text!r}") from None


def plan_for(
    overlay: str, *, layers_dir: Traversable | Path | str | None = None, sets: Sequence[str] = ()
) -> tuple[Merged, Plan]:
    """Merge the layers of ``overlay`` and resolve them into a plan."""
    merged = merge_layers(load_layers(overlay, layers_dir=layers_dir, sets=sets))
    return merged, resolve(parse_config(merged))


def build_manifests(plan: Plan) -> list[dict[str, Any]]:
    """Every manifest of the plan, in apply order."""
    config = plan.config
    trigger_s = duration_s(config.stream.trigger, "stream.trigger")
    duration_s(config.stream.watermark, "stream.watermark")
    if config.simulator.enabled:
        duration_s(config.simulator.duration, "simulator.duration")
    scheduled = scheduled_spark_application(plan)
    manifests = [
        *access_resources(plan),
        *service_resources(plan),
        pod_template_configmap(plan),
        *router_resources(plan),
        spark_application(plan),
        *([scheduled] if scheduled else []),
        *monitoring_resources(plan, trigger_s),
    ]
    # A JSON round trip: no object shared between manifests (builders reuse pieces).
    return [json.loads(json.dumps(m)) for m in manifests]


def render(
    overlay: str,
    *,
    layers_dir: Traversable | Path | str | None = None,
    sets: Sequence[str] = (),
    validate: bool = True,
) -> Rendered:
    """The validated manifests of ``overlay`` (see the module doc)."""
    merged, plan = plan_for(overlay, layers_dir=layers_dir, sets=sets)
    manifests = build_manifests(plan)
    if validate:
        validate_all(manifests, plan.config.cluster.kubernetes_version)
    return Rendered(overlay=overlay, merged=merged, plan=plan, manifests=manifests)


def write(rendered: Rendered, out_dir: str | Path) -> list[Path]:
    """Write one file per resource into ``out_dir``; files from an earlier render that no
    longer correspond to a resource are removed (nothing else is touched)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = rendered.files()
    for stale in out.iterdir():
        if _RENDERED.match(stale.name) and stale.name not in files:
            stale.unlink()
    paths = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
