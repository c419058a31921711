"""Layered job configuration: YAML layers merged in one fixed order, with provenance.

The order, lowest precedence first (each kind: the base file, then the overlay's file)::

    1. pools       node pools: shapes, reserved shares, labels and taints  (``pools``)
    2. cluster     the platform: image, storage, monitoring, Redis, Spark   (``cluster``)
                   defaults (``cluster.sparkConf``)
    3. job         the workloads: ``stream``, ``train``, ``router``, ``simulator``,
                   ``historyServer``
       --set       command-line overrides (``--set stream.executor.instances=4``)
    4. namespace   enforced policy of the target namespace: applied last, may set any key

A layer kind may only set its own sections, except the namespace policy, which wins over
everything (that is what makes it a policy). Mappings merge key by key, lists replace,
and ``null`` removes a key. Every leaf remembers the layers that set it, so
``airpath k8s render --explain`` can say where each value came from and what it
overrode.

Layer files live in a directory laid out as ``base/<kind>.yaml`` and
``overlays/<overlay>/<kind>.yaml``; the ones shipped with airpath are in this package
(``airpath/deploy/layers``), and ``--layers DIR`` points at a copy of your own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from airpath.deploy.errors import LayerError
from airpath.deploy.sparkconf import normalise_layer
from airpath.deploy.typed import format_path

KINDS = ("pools", "cluster", "job", "namespace")
SECTIONS: dict[str, frozenset[str]] = {
    "pools": frozenset({"pools"}),
    "cluster": frozenset({"cluster"}),
    "job": frozenset({"stream", "train", "router", "simulator", "historyServer"}),
    "set": frozenset(
        {"stream", "train", "router", "simulator", "historyServer", "cluster", "pools"}
    ),
}
# Keys whose value is a free mapping: a dotted --set path ends at the first of these.
FREE_MAPS = frozenset(
    {"sparkConf", "nodeLabels", "labels", "selectorLabels", "annotations", "nodeSelector"}
)
KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Layer:
    """One layer: its kind, where it came from, and its (normalised) content."""

    kind: str  # pools | cluster | job | set | namespace
    source: str  # "base/pools.yaml", "overlays/prod/job.yaml", "--set"
    data: Mapping[str, Any]


@dataclass
class Merged:
    """The merged tree and, per leaf path, every (source, value) that set it, in order."""

    tree: dict[str, Any] = field(default_factory=dict)
    history: dict[KeyPath, list[tuple[str, Any]]] = field(default_factory=dict)

    def origin(self, path: KeyPath) -> str:
        """The layer that set ``path`` (or its nearest ancestor), for error messages."""
        for n in range(len(path), 0, -1):
            seen = self.history.get(path[:n])
            if seen:
                return f"set by {seen[-1][0]}"
        return ""


def packaged_layers() -> Traversable:
    """The layer directory shipped inside the airpath package."""
    return resources.files("airpath.deploy") / "layers"


def overlays(layers_dir: Traversable | Path | str | None = None) -> list[str]:
    """The overlay names a layer directory offers (``dev``, ``prod``, …)."""
    root = _root(layers_dir) / "overlays"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _root(layers_dir: Traversable | Path | str | None) -> Traversable:
    if layers_dir is None:
        return packaged_layers()
    root = Path(layers_dir) if isinstance(layers_dir, str) else layers_dir
    if not (root / "base").is_dir():
        raise LayerError(f"{root}: not a layer directory (expected base/ and overlays/)")
    return root


def load_layers(
    overlay: str, *, layers_dir: Traversable | Path | str | None = None, sets: Sequence[str] = ()
) -> list[Layer]:
    """The layers of ``overlay`` in merge order (see the module doc)."""
    root = _root(layers_dir)
    if overlay not in overlays(layers_dir):
        offered = ", ".join(overlays(layers_dir)) or "none"
        raise LayerError(f"unknown overlay {overlay!r} (this layer directory has: {offered})")
    layers: list[Layer] = []
    for kind in KINDS:
        if kind == "namespace" and sets:
            layers.append(_set_layer(sets))
        for rel in (f"base/{kind}.yaml", f"overlays/{overlay}/{kind}.yaml"):
            entry = root.joinpath(*rel.split("/"))
            if entry.is_file():
                layers.append(_read_layer(kind, rel, entry.read_text(encoding="utf-8")))
    return layers


def _read_layer(kind: str, source: str, text: str) -> Layer:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise LayerError(f"layer {source}{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LayerError(
            f"layer {source}: must be a mapping of sections, got {type(data).__name__}"
        )
    return make_layer(kind, source, data)


def make_layer(kind: str, source: str, data: Mapping[str, Any]) -> Layer:
    """Check a layer's sections against its kind and normalise its sparkConf maps."""
    allowed = SECTIONS.get(kind)
    if allowed is not None:
        for section in data:
            if section not in allowed:
                raise LayerError(
                    f"layer {source}: a {kind} layer may set only "
                    f"{', '.join(sorted(allowed))}, not {section!r}"
                )
    return Layer(kind, source, normalise_layer(dict(data), source, kind))


def _set_layer(sets: Sequence[str]) -> Layer:
    data: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise LayerError(f"--set takes PATH=VALUE (stream.executor.instances=4), got {item!r}")
        path = split_set_path(key)
        value = yaml.safe_load(raw) if raw else ""
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise LayerError(f"--set {item!r}: {part!r} is set twice")
        node[path[-1]] = value
    return make_layer("set", "--set", data)


def split_set_path(key: str) -> KeyPath:
    """``stream.sparkConf.spark.sql.shuffle.partitions`` → the sparkConf key stays whole."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part in FREE_MAPS and i + 1 < len(parts):
            return (*parts[: i + 1], ".".join(parts[i + 1 :]))
    return tuple(parts)


def merge_layers(layers: Sequence[Layer]) -> Merged:
    """Merge ``layers`` in order: later wins; mappings merge, lists replace, null removes."""
    merged = Merged()
    for layer in layers:
        _merge_into(merged, merged.tree, layer.data, (), layer.source)
    return merged


def _merge_into(
    merged: Merged, target: dict[str, Any], patch: Mapping[str, Any], path: KeyPath, source: str
) -> None:
    for key, value in patch.items():
        here = (*path, str(key))
        if value is None:
            if key in target:
                _forget(merged, here)
                target.pop(key)
                merged.history.setdefault(here, []).append((source, None))
        elif isinstance(value, Mapping):
            if not isinstance(target.get(key), dict):
                if key in target:
                    _forget(merged, here)
                target[key] = {}
            _merge_into(merged, target[key], value, here, source)
        else:
            if isinstance(target.get(key), dict):
                _forget(merged, here)
            target[key] = value
            merged.history.setdefault(here, []).append((source, value))


def _forget(merged: Merged, path: KeyPath) -> None:
    """Drop the history below ``path`` (its subtree is being replaced)."""
    for known in [p for p in merged.history if len(p) > len(path) and p[: len(path)] == path]:
        del merged.history[known]


def explain(merged: Merged) -> list[str]:
    """One line per value: the path, the final value, the layer that set it, and what it
    overrode (``was 2 from base/job.yaml``)."""
    lines = []
    for path in sorted(merged.history):
        seen = merged.history[path]
        source, value = seen[-1]
        shown = "(removed)" if value is None else _show(value)
        line = f"{format_path(path)} = {shown}  ← {source}"
        earlier = [f"{_show(v)} from {s}" for s, v in seen[:-1]]
        if earlier:
            line += f"  (was {'; '.join(reversed(earlier))})"
        lines.append(line)
    return lines


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value and value.strip() == value and ":" not in value else repr(value)
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000)
        .strip()
        .removesuffix("...")
        .strip()
    )
