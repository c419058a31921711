"""Checking rendered manifests before anything reaches a cluster.

* **Spark Operator kinds** against the operator's own typed models (``kubeflow-spark-api``,
  pydantic models generated from the operator's Go types): wrong types fail there, and
  fields the models drop on a round trip are reported as unknown (a typo such as
  ``coreRequests`` would otherwise vanish silently, as it does in the API server, whose
  published CRD schema does not forbid unknown fields).
* **Core kinds** (Deployment, Service, NetworkPolicy, …) strictly against the Kubernetes
  JSON schemas of the target version shipped by ``kubernetes-validate`` (unknown fields
  fail, as ``kubectl --validate=strict`` would).
* **Prometheus Operator kinds** structurally, against the subset of their CRD schemas
  that airpath renders (:data:`MONITORING_SCHEMAS`).

Every failure is one :class:`ManifestError` line naming the object and the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
from pydantic import ValidationError as ModelError

from airpath.deploy.errors import ManifestError

SPARK_KINDS = ("SparkApplication", "ScheduledSparkApplication")
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": _STR_MAP, "matchExpressions": {"type": "array"}},
}
_NAMESPACES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "any": {"type": "boolean"},
        "matchNames": {"type": "array", "items": {"type": "string"}},
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]},
        "interval": {"type": "string", "pattern": DURATION},
        "scrapeTimeout": {"type": "string", "pattern": DURATION},
        "honorLabels": {"type": "boolean"},
    },
}
_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _STR_MAP},
}


def _kind_schema(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"type": "string"},
            "metadata": _META,
            "spec": spec,
        },
    }


# Subsets of the Prometheus Operator CRDs (monitoring.coreos.com/v1): the fields airpath
# emits, with the CRDs' own types, enums and duration pattern.
MONITORING_SCHEMAS: dict[str, dict[str, Any]] = {
    "PodMonitor": _kind_schema({
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {
            "selector": _SELECTOR,
            "namespaceSelector": _NAMESPACES,
            "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    }),
    "ServiceMonitor": _kind_schema({
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", "endpoints"],
        "properties": {
            "selector": _SELECTOR,
            "namespaceSelector": _NAMESPACES,
            "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    }),
    "PrometheusRule": _kind_schema({
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "rules"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": {"type": "string", "pattern": DURATION},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["expr"],
                                "properties": {
                                    "alert": {"type": "string"},
                                    "record": {"type": "string"},
                                    "expr": {"type": "string", "minLength": 1},
                                    "for": {"type": "string", "pattern": DURATION},
                                    "labels": _STR_MAP,
                                    "annotations": _STR_MAP,
                                },
                            },
                        },
                    },
                },
            }
        },
    }),
}  # fmt: skip


def name_of(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind', '?')} {obj.get('metadata', {}).get('name', '?')}"


def validate_spark(obj: Mapping[str, Any]) -> None:
    """Check a SparkApplication or ScheduledSparkApplication against the typed models."""
    from kubeflow_spark_api.models.spark_v1beta2_scheduled_spark_application import (
        SparkV1beta2ScheduledSparkApplication,
    )
    from kubeflow_spark_api.models.spark_v1beta2_spark_application import (
        SparkV1beta2SparkApplication,
    )

    model = (
        SparkV1beta2SparkApplication
        if obj.get("kind") == "SparkApplication"
        else SparkV1beta2ScheduledSparkApplication
    )
    try:
        parsed = model.from_dict(dict(obj))
    except ModelError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(
            f"{name_of(obj)}: {exc.title}.{where}: {first['msg']} (got {first.get('input')!r})"
        ) from None
    dropped = _dropped(obj, parsed.to_dict(), ())
    if dropped:
        raise ManifestError(f"{name_of(obj)}: unknown field {'.'.join(dropped)}")


def _dropped(given: Any, kept: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The first path present in ``given`` but missing after the model's round trip."""
    if isinstance(given, Mapping):
        if not isinstance(kept, Mapping):
            return path
        for key, value in given.items():
            if key not in kept:
                return (*path, str(key))
            found = _dropped(value, kept[key], (*path, str(key)))
            if found:
                return found
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (g, k) in enumerate(zip(given, kept, strict=False)):
            found = _dropped(g, k, (*path, str(i)))
            if found:
                return found
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


@functools.cache
def _definitions(schema_dir: str) -> Any:
    from kubernetes_validate import utils
    from referencing import Resource

    defs = utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", "")
    return Resource.from_contents(defs)


@functools.cache
def _core_validator(kind: str, api_version: str, kubernetes_version: str) -> Any:
    """The strict validator ``kubernetes_validate.validate`` builds, built once per kind.

    ``kubernetes_validate.validate`` re-reads and parses the schema definitions (several MB
    of JSON) on every call; rendering validates ~30 objects, so the validator is cached
    here, built exactly as that function builds it (the newest schema version not newer
    than the one asked for, ``-local-strict`` schemas, Draft 2020-12). A test checks that
    both agree."""
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    wanted = _version_key(kubernetes_version)
    versions = [v for v in utils.all_versions() if _version_key(v) <= wanted]
    if not versions:
        raise ManifestError(f"no Kubernetes schemas for version {kubernetes_version}")
    schema_dir = f"v{versions[-1]}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", ""
        )
    except FileNotFoundError:
        raise ManifestError(
            f"{kind}: no schema for {api_version} in Kubernetes {kubernetes_version}"
        ) from None
    registry = Resource.from_contents(schema) @ (_definitions(schema_dir) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_core(obj: Mapping[str, Any], kubernetes_version: str) -> None:
    """Check a core kind strictly against the Kubernetes schemas of that version."""
    validator = _core_validator(str(obj["kind"]), str(obj["apiVersion"]), kubernetes_version)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(obj)))
    if error is not None:
        path = ".".join(str(p) for p in error.path)
        raise ManifestError(f"{name_of(obj)}: {path or '<root>'}: {error.message}")


def validate_monitoring(obj: Mapping[str, Any]) -> None:
    schema = MONITORING_SCHEMAS[str(obj["kind"])]
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(dict(obj))
    )
    if error is not None:
        path = ".".join(str(p) for p in error.path)
        raise ManifestError(f"{name_of(obj)}: {path or '<root>'}: {error.message}")


def validate_all(manifests: Sequence[Mapping[str, Any]], kubernetes_version: str) -> None:
    """Validate every manifest with the check its kind calls for."""
    for obj in manifests:
        kind = obj.get("kind")
        if kind in SPARK_KINDS:
            validate_spark(obj)
        elif kind in MONITORING_SCHEMAS:
            validate_monitoring(obj)
        else:
            validate_core(obj, kubernetes_version)
