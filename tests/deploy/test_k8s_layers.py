"""Layered configuration: merge order, provenance, scoping, sparkConf mapping, errors."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

import pytest

from airpath.deploy import LayerError, SizingError, render
from airpath.deploy.config import parse_config
from airpath.deploy.layers import (
    explain,
    load_layers,
    make_layer,
    merge_layers,
    overlays,
    packaged_layers,
    split_set_path,
)


def test_shipped_overlays() -> None:
    assert overlays() == ["dev", "prod"]


def test_layers_merge_in_the_documented_order() -> None:
    layers = load_layers("prod", sets=["stream.trigger=45s"])
    assert [layer.source for layer in layers] == [
        "base/pools.yaml",
        "overlays/prod/pools.yaml",
        "base/cluster.yaml",
        "overlays/prod/cluster.yaml",
        "base/job.yaml",
        "overlays/prod/job.yaml",
        "--set",
        "base/namespace.yaml",
        "overlays/prod/namespace.yaml",
    ]
    merged = merge_layers(layers)
    assert merged.tree["stream"]["trigger"] == "45s"
    assert merged.tree["stream"]["executor"]["instances"] == 4
    assert merged.history[("stream", "executor", "instances")] == [
        ("base/job.yaml", 2),
        ("overlays/prod/job.yaml", 4),
    ]


def test_later_layers_win_null_removes_and_lists_replace() -> None:
    base = make_layer("job", "a.yaml", {"stream": {"x": 1, "y": [1, 2], "z": {"k": "v"}}})
    over = make_layer("job", "b.yaml", {"stream": {"x": 2, "y": [3], "z": None}})
    merged = merge_layers([base, over])
    assert merged.tree == {"stream": {"x": 2, "y": [3]}}
    lines = explain(merged)
    assert "stream.x = 2  ← b.yaml  (was 1 from a.yaml)" in lines
    assert "stream.z = (removed)  ← b.yaml" in lines
    assert not any(line.startswith("stream.z.k") for line in lines)


def test_the_namespace_policy_wins_over_command_line_overrides() -> None:
    key = "stream.sparkConf.spark.kubernetes.executor.deleteOnTermination"
    r = render("prod", sets=[f"{key}=false"])
    conf = r.plan.stream.spark_conf
    assert conf["spark.kubernetes.executor.deleteOnTermination"] == "true"
    lines = explain(r.merged)
    line = next(x for x in lines if "deleteOnTermination" in x and x.startswith("stream"))
    assert "← overlays/prod/namespace.yaml" in line
    assert "false from --set" in line


def test_a_layer_may_set_only_its_own_sections() -> None:
    with pytest.raises(LayerError, match=r"a pools layer may set only pools, not 'stream'"):
        make_layer("pools", "p.yaml", {"stream": {"trigger": "1s"}})
    with pytest.raises(LayerError, match="may set only"):
        render("dev", sets=["namespace.name=other"])


def test_set_paths_keep_spark_keys_whole() -> None:
    assert split_set_path("stream.sparkConf.spark.sql.shuffle.partitions") == (
        "stream",
        "sparkConf",
        "spark.sql.shuffle.partitions",
    )
    assert split_set_path("cluster.storage.workSize") == ("cluster", "storage", "workSize")


def test_set_values_are_yaml_scalars() -> None:
    r = render("dev", sets=["stream.executor.instances=2", "router.minAvailable=0"])
    assert r.plan.stream.instances == 2


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("spark.master", "the Spark Operator sets it"),
        ("spark.kubernetes.driver.master", "the Spark Operator sets it"),
        ("spark.kubernetes.authenticate.oauthToken", "credentials"),
        ("spark.kubernetes.authenticate.driver.oauthTokenFile", "credentials"),
        ("spark.kubernetes.driver.podTemplateFile", "pod templates are rendered"),
        ("spark.kubernetes.namespace", "namespace.name, set by the namespace layer"),
        ("spark.dynamicAllocation.enabled", "SPARK-24815"),
    ],
)
def test_webhook_rejected_keys_are_refused_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(LayerError) as info:
        render("dev", sets=[f"stream.sparkConf.{key}=x"])
    message = str(info.value)
    assert key in message
    assert reason in message
    assert "--set" in message
    assert "\n" not in message


def test_keys_with_a_crd_field_are_mapped_onto_it() -> None:
    r = render(
        "dev",
        sets=[
            "stream.sparkConf.spark.kubernetes.container.image=reg/stream:1",
            "stream.sparkConf.spark.kubernetes.authenticate.driver.serviceAccountName=sa-x",
            "stream.sparkConf.spark.executor.instances=1",
            "stream.sparkConf.spark.kubernetes.executor.request.cores=400m",
        ],
    )
    app = next(m for m in r.manifests if m["kind"] == "SparkApplication")
    spec = app["spec"]
    assert spec["image"] == "reg/stream:1"
    assert spec["driver"]["serviceAccount"] == "sa-x"
    assert spec["executor"]["coreRequest"] == "400m"
    for key in spec["sparkConf"]:
        assert not key.startswith("spark.kubernetes.container.image")
        assert key not in ("spark.executor.instances", "spark.kubernetes.executor.request.cores")
    # The RoleBinding follows the account the layers chose.
    binding = next(m for m in r.manifests if m["kind"] == "RoleBinding")
    assert {"kind": "ServiceAccount", "name": "sa-x", "namespace": "airpath-dev"} in binding[
        "subjects"
    ]


def test_cluster_level_job_keys_become_defaults_of_both_jobs(tmp_path: Path) -> None:
    layers = _copy_layers(tmp_path)
    cluster = layers / "base" / "cluster.yaml"
    text = cluster.read_text()
    with_image = text.replace(
        "  sparkConf:\n", "  sparkConf:\n    spark.kubernetes.container.image: x\n"
    )
    cluster.write_text(with_image)
    with pytest.raises(LayerError, match=r"maps to cluster.image, which the same layer also sets"):
        render("prod", layers_dir=layers)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("  image:")) + "\n"
    cluster.write_text(
        text.replace(
            "  sparkConf:\n",
            "  sparkConf:\n"
            "    spark.kubernetes.container.image: reg/platform:7\n"
            "    spark.driver.memory: 3g\n"
            "    spark.kubernetes.driver.limit.cores: 2\n"
            "    spark.dynamicAllocation.maxExecutors: 9\n",
        )
    )
    r = render("prod", layers_dir=layers)
    assert r.config.cluster.image == "reg/platform:7"
    # A default no job layer overrides reaches both jobs' CRD fields ...
    assert r.plan.train is not None
    assert r.plan.stream.driver.core_limit == r.plan.train.driver.core_limit == "2"
    # ... and one the job layer sets (driver memory 2g) loses to it, as the order says.
    assert r.plan.stream.driver.memory == r.plan.train.driver.memory == "2g"
    # The prod job layer's maxExecutors (16) comes later and wins over the cluster default.
    assert r.config.train.dynamic_allocation.max_executors == 16
    line = next(
        x for x in explain(r.merged) if x.startswith("train.dynamicAllocation.maxExecutors")
    )
    assert "(was 4 from base/job.yaml; 9 from base/cluster.yaml)" in line


def test_the_namespace_key_maps_to_the_namespace_in_the_policy_layer(tmp_path: Path) -> None:
    layers = _copy_layers(tmp_path)
    (layers / "overlays" / "dev" / "namespace.yaml").write_text(
        "stream:\n  sparkConf:\n    spark.kubernetes.namespace: team-air\n"
    )
    r = render("dev", layers_dir=layers)
    assert r.plan.namespace == "team-air"
    assert all(m["metadata"].get("namespace", "team-air") == "team-air" for m in r.manifests)


def _copy_layers(tmp_path: Path) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(str(packaged_layers()), target)
    return target


def test_typos_wrong_types_and_missing_keys_name_the_layer(tmp_path: Path) -> None:
    with pytest.raises(LayerError) as info:
        render("prod", sets=["stream.executor.coreRequests=3"])
    assert str(info.value).startswith("stream.executor.coreRequests: unknown key")
    assert "(set by --set)" in str(info.value)

    with pytest.raises(
        LayerError, match=r"stream.executor.instances: must be an integer, got 'four'"
    ):
        render("prod", sets=["stream.executor.instances=four"])

    layers = _copy_layers(tmp_path)
    job = layers / "base" / "job.yaml"
    job.write_text(job.read_text().replace("  trigger: 30s\n", ""))
    with pytest.raises(LayerError, match=r"stream.trigger: is required but no layer sets it"):
        render("prod", layers_dir=layers)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    layers = _copy_layers(tmp_path)
    (layers / "overlays" / "prod" / "job.yaml").write_text("stream:\n  executor: [unclosed\n")
    with pytest.raises(LayerError, match=r"layer overlays/prod/job.yaml line \d+"):
        render("prod", layers_dir=layers)


def test_unknown_overlay_and_pool_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"unknown overlay 'staging'.*dev, prod"):
        render("staging")
    with pytest.raises(LayerError, match=r"stream.executor.pool: unknown pool 'spot'"):
        render("dev", sets=["stream.executor.pool=spot"])
    with pytest.raises(LayerError, match="not a layer directory"):
        render("dev", layers_dir=tmp_path)


def test_bad_durations_are_refused() -> None:
    with pytest.raises(LayerError, match=r"stream.trigger: not a duration"):
        render("dev", sets=["stream.trigger=soon"])


def test_a_custom_layer_directory_renders_with_its_own_overlay(tmp_path: Path) -> None:
    layers = _copy_layers(tmp_path)
    staging = layers / "overlays" / "staging"
    shutil.copytree(layers / "overlays" / "prod", staging)
    (staging / "namespace.yaml").write_text("namespace:\n  name: airpath-staging\n")
    r = render("staging", layers_dir=layers)
    assert r.plan.namespace == "airpath-staging"
    assert overlays(layers) == ["dev", "prod", "staging"]


def test_overcommitting_devs_single_node_is_refused() -> None:
    with pytest.raises(SizingError, match=r"pool onDemand .* cannot hold everything"):
        render("dev", sets=["stream.executor.instances=6"])


def test_explicit_sizes_that_cannot_schedule_are_refused() -> None:
    with pytest.raises(SizingError, match=r"stream.executor requests 4 CPU .* can never schedule"):
        render("prod", sets=["stream.executor.coreRequest=4", "stream.executor.cores=4"])


def test_every_parse_error_is_one_line() -> None:
    merged = merge_layers(load_layers("dev", sets=["router.port=http"]))
    with pytest.raises(LayerError) as info:
        parse_config(merged)
    assert "\n" not in str(info.value)


def test_module_examples_run() -> None:
    import airpath.deploy
    import airpath.deploy.quantity
    import airpath.deploy.sizing

    for module in (airpath.deploy, airpath.deploy.quantity, airpath.deploy.sizing):
        result = doctest.testmod(module)
        assert result.failed == 0
        assert result.attempted > 0


def test_a_disruption_budget_that_blocks_every_drain_is_refused() -> None:
    with pytest.raises(LayerError, match=r"router.minAvailable \(3\) must be below"):
        render("prod", sets=["router.minAvailable=3"])
