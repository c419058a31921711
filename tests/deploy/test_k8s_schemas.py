"""Every rendered manifest against its published schema, strictly (oracles, not examples).

* core kinds: the Kubernetes JSON schemas (``kubernetes-validate``, strict), and every
  Spark pod template as the Pod it becomes;
* Spark Operator kinds: the operator's CRD ``openAPIV3Schema`` made strict
  (``additionalProperties: false`` where the CRD lists properties), with ``jsonschema``;
* Prometheus Operator kinds: the structural subset in ``airpath.deploy.validate``.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from airpath.deploy import ManifestError, Rendered, render
from airpath.deploy.validate import (
    MONITORING_SCHEMAS,
    SPARK_KINDS,
    validate_core,
    validate_monitoring,
    validate_spark,
)

OVERLAYS = ("dev", "prod")
VARIANTS = {
    # Options that change the shape of what is rendered, each validated as well.
    "yunikorn": (
        "prod",
        ["cluster.batchScheduler.name=yunikorn", "cluster.batchScheduler.queue=q"],
    ),
    "volcano": ("prod", ["cluster.batchScheduler.name=volcano"]),
    "managed-redis": (
        "prod",
        [
            "cluster.redis.deploy=false",
            "cluster.redis.url=rediss://r.example.com:6380/0",
            "cluster.redis.passwordSecret.name=redis",
            "cluster.redis.passwordSecret.key=password",
            "cluster.network.claimName=city-network",
        ],
    ),
    "no-training": ("dev", ["train.enabled=false", "simulator.enabled=false"]),
}


@pytest.fixture(scope="module")
def everything(rendered: dict[str, Rendered]) -> list[tuple[str, dict[str, Any]]]:
    """(overlay or variant, manifest) for both overlays and every variant."""
    out = [(o, m) for o in OVERLAYS for m in rendered[o].manifests]
    for name, (overlay, sets) in VARIANTS.items():
        out += [(name, m) for m in render(overlay, sets=sets, validate=False).manifests]
    return out


def test_core_kinds_are_strictly_valid(
    rendered: dict[str, Rendered], everything: list[tuple[str, dict[str, Any]]]
) -> None:
    seen = set()
    for where, obj in everything:
        if obj["kind"] in SPARK_KINDS or obj["kind"] in MONITORING_SCHEMAS:
            continue
        version = rendered["prod"].config.cluster.kubernetes_version
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} {obj['kind']} {obj['metadata']['name']}: {exc.message}")
        seen.add(obj["kind"])
    assert {"Deployment", "NetworkPolicy", "Role", "PriorityClass", "Job"} <= seen


def _templates(app: dict[str, Any]) -> list[dict[str, Any]]:
    spec = app["spec"].get("template", app["spec"])
    return [spec["driver"]["template"], spec["executor"]["template"]]


def test_spark_pod_templates_are_valid_pods(everything: list[tuple[str, dict[str, Any]]]) -> None:
    count = 0
    for _, obj in everything:
        if obj["kind"] in SPARK_KINDS:
            for template in _templates(obj):
                pod = {"apiVersion": "v1", "kind": "Pod", **template}
                kubernetes_validate.validate(pod, "1.31", strict=True)
                count += 1
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "airpath-pod-templates":
            for text in obj["data"].values():
                kubernetes_validate.validate(yaml.safe_load(text), "1.31", strict=True)
    assert count >= 12


def test_spark_kinds_are_strictly_valid_against_the_operator_crds(
    everything: list[tuple[str, dict[str, Any]]],
    crd_validators: dict[str, jsonschema.Draft202012Validator],
) -> None:
    count = 0
    for where, obj in everything:
        if obj["kind"] in SPARK_KINDS:
            errors = list(crd_validators[obj["kind"]].iter_errors(obj))
            assert not errors, (
                f"{where} {obj['kind']}: {errors[0].message} at {list(errors[0].path)}"
            )
            count += 1
    assert count >= 10


def test_the_strict_crd_check_catches_unknown_and_mistyped_fields(
    rendered: dict[str, Rendered], crd_validators: dict[str, jsonschema.Draft202012Validator]
) -> None:
    app = next(m for m in rendered["prod"].manifests if m["kind"] == "SparkApplication")
    typo = copy.deepcopy(app)
    typo["spec"]["executor"]["coreRequests"] = "3400m"
    assert "coreRequests" in next(crd_validators["SparkApplication"].iter_errors(typo)).message
    fractional = copy.deepcopy(app)
    fractional["spec"]["executor"]["cores"] = 3.4  # cores are integers: 3400m is coreRequest
    assert list(crd_validators["SparkApplication"].iter_errors(fractional))


def test_monitoring_kinds_are_structurally_valid(
    everything: list[tuple[str, dict[str, Any]]],
) -> None:
    kinds = set()
    for _, obj in everything:
        if obj["kind"] in MONITORING_SCHEMAS:
            validate_monitoring(obj)
            kinds.add(obj["kind"])
    assert kinds == {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def test_the_typed_models_reject_wrong_types_and_unknown_fields(
    rendered: dict[str, Rendered],
) -> None:
    app = next(m for m in rendered["prod"].manifests if m["kind"] == "SparkApplication")
    validate_spark(app)
    wrong = copy.deepcopy(app)
    wrong["spec"]["executor"]["cores"] = "4"
    with pytest.raises(ManifestError, match=r"SparkApplication airpath-stream: .*cores.*integer"):
        validate_spark(wrong)
    unknown = copy.deepcopy(app)
    unknown["spec"]["driver"]["template"]["spec"]["tolerationz"] = []
    with pytest.raises(ManifestError, match=r"unknown field spec.driver.template.spec.tolerationz"):
        validate_spark(unknown)
    scheduled = next(
        m for m in rendered["prod"].manifests if m["kind"] == "ScheduledSparkApplication"
    )
    validate_spark(scheduled)


def test_core_and_monitoring_errors_are_one_line(rendered: dict[str, Rendered]) -> None:
    deployment = next(m for m in rendered["prod"].manifests if m["kind"] == "Deployment")
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(ManifestError) as info:
        validate_core(bad, "1.31")
    assert "livenesProbe" in str(info.value)
    assert "\n" not in str(info.value)
    rule = next(m for m in rendered["prod"].manifests if m["kind"] == "PrometheusRule")
    bad_rule = copy.deepcopy(rule)
    bad_rule["spec"]["groups"][0]["rules"][0]["for"] = "two minutes"
    with pytest.raises(ManifestError, match=r"PrometheusRule airpath: spec.groups.0.rules.0.for"):
        validate_monitoring(bad_rule)


def _rejects(check: Any, obj: dict[str, Any]) -> bool:
    try:
        check(obj)
    except (ManifestError, kubernetes_validate.ValidationError):
        return True
    return False


def test_the_cached_core_validator_agrees_with_kubernetes_validate(
    rendered: dict[str, Rendered],
) -> None:
    deployment = next(m for m in rendered["prod"].manifests if m["kind"] == "Deployment")
    broken = []
    for path, value in (
        (("spec", "replicas"), "3"),
        (("spec", "template", "spec", "containers", 0, "bogus"), 1),
        (("spec", "strategy", "type"), 7),
    ):
        obj = copy.deepcopy(deployment)
        node: Any = obj
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        broken.append(obj)
    no_name = copy.deepcopy(deployment)
    del no_name["spec"]["template"]["spec"]["containers"][0]["name"]
    broken.append(no_name)
    for version in ("1.25", "1.31", "1.37"):
        for obj in [deployment, *broken]:
            ours = _rejects(lambda o, v=version: validate_core(o, v), obj)
            theirs = _rejects(
                lambda o, v=version: kubernetes_validate.validate(o, v, strict=True), obj
            )
            assert ours == theirs
        assert not _rejects(lambda o, v=version: validate_core(o, v), deployment)
