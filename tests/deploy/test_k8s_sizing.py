"""Executor sizing: worked examples, the arithmetic as a property, and refusals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airpath.deploy import NodeShape, SizingError, size_executors
from airpath.deploy.quantity import (
    format_cpu,
    parse_cpu_m,
    parse_memory_mib,
    parse_spark_memory_mib,
)
from airpath.deploy.sizing import (
    MIN_HEAP_MIB,
    MIN_OVERHEAD_MIB,
    default_reserved,
    overhead_mib,
    split_pod_memory,
)


def test_four_core_node_with_85_percent_allocatable_requests_3400m() -> None:
    # 4 cores, 100m reserved by the system and 500m by DaemonSets: 3400m free (85 %).
    node = NodeShape.create(
        "4", "16Gi", system_reserved=("100m", "1Gi"), daemonset_cpu="500m", daemonset_memory="1Gi"
    )
    size = size_executors(node, workload="pyspark")
    assert size.executors_per_node == 1
    assert size.core_request == "3400m"
    assert size.cores == 4  # task slots follow the node's cores, the request what is free
    # 16384 − 1024 − 1024 = 14336 MiB free; heap = 14336 / 1.4 = 10240, overhead 0.4 × heap.
    assert (size.heap, size.overhead) == ("10g", "4g")
    assert size.pod_memory_mib == node.free_memory_mib
    assert size.spark_conf()["spark.kubernetes.executor.request.cores"] == "3400m"
    assert size.spark_conf()["spark.executor.memoryOverheadFactor"] == "0.4"


def test_a_share_of_capacity_can_stand_for_the_reservations() -> None:
    node = NodeShape.create(
        "4", "16Gi", system_reserved="15%", daemonset_cpu="0", daemonset_memory="0"
    )
    assert size_executors(node).core_request == "3400m"


def test_default_reservation_follows_gke_tiers() -> None:
    # CPU: 6 % of core 1 + 1 % of core 2 + 0.5 % of cores 3–4 = 60 + 10 + 10 = 80m.
    # Memory: 25 % of 4 GiB + 20 % of 4 GiB + 10 % of 8 GiB = 2662.4 → 2663, + 100 eviction.
    assert default_reserved(4000, 16384) == (80, 2763)
    node = NodeShape.create("4", "16Gi", daemonset_cpu="300m", daemonset_memory="768Mi")
    size = size_executors(node)
    assert size.core_request == "3600m"  # 4000 − 80 − 300 = 3620 → 100m steps
    assert size.pod_memory_mib == 16384 - 2763 - 768


def test_sixteen_core_node_gets_four_executors_of_four_slots() -> None:
    node = NodeShape.create(
        "16", "64Gi", system_reserved=("200m", "2Gi"), daemonset_cpu="600m", daemonset_memory="2Gi"
    )
    size = size_executors(node)
    assert (size.executors_per_node, size.cores) == (4, 4)
    assert size.core_request == "3800m"  # (16000 − 800) / 4
    assert 4 * size.pod_memory_mib <= node.free_memory_mib


def test_jvm_workload_uses_factor_0_1_and_the_384_mib_floor() -> None:
    assert overhead_mib(10240, "jvm") == 1024
    assert overhead_mib(2048, "jvm") == MIN_OVERHEAD_MIB
    assert overhead_mib(2048, "pyspark") == 819
    assert split_pod_memory(2048, "jvm") == (1664, 384)  # 0.1 × 1861 < 384: the floor binds
    assert split_pod_memory(14336, "pyspark") == (10240, 4096)


@settings(max_examples=300, deadline=None)
@given(
    cores=st.integers(1, 96),
    memory_gib=st.integers(1, 512),
    reserved_pct=st.integers(0, 30),
    ds_cpu_m=st.integers(0, 2000),
    ds_mem_mib=st.integers(0, 4096),
    per_node=st.one_of(st.none(), st.integers(1, 16)),
    workload=st.sampled_from(["pyspark", "jvm"]),
)
def test_sizes_fit_and_pack_or_are_refused(
    cores: int,
    memory_gib: int,
    reserved_pct: int,
    ds_cpu_m: int,
    ds_mem_mib: int,
    per_node: int | None,
    workload: str,
) -> None:
    node = NodeShape.create(
        str(cores),
        f"{memory_gib}Gi",
        system_reserved=f"{reserved_pct}%",
        daemonset_cpu=f"{ds_cpu_m}m",
        daemonset_memory=f"{ds_mem_mib}Mi",
    )
    try:
        size = size_executors(node, workload=workload, executors_per_node=per_node)
    except SizingError as exc:
        message = str(exc)
        size = None
    if size is None:
        assert "\n" not in message
        return
    n = size.executors_per_node
    # Fits: n pods' requests within what is free on the node.
    assert n * size.core_request_m <= node.free_cpu_m
    assert n * size.pod_memory_mib <= node.free_memory_mib
    # Packs: less than one 100m step of CPU and under 1 MiB of memory per pod left over.
    assert node.free_cpu_m - n * size.core_request_m < 100 * n
    assert node.free_memory_mib - n * size.pod_memory_mib < n
    # Spark's rules: overhead = max(factor × heap, 384 MiB), heap ≥ 450 MiB, ≥ 1 slot.
    factor = 0.4 if workload == "pyspark" else 0.1
    assert size.overhead_mib >= max(math.floor(factor * size.heap_mib), MIN_OVERHEAD_MIB)
    assert size.heap_mib >= MIN_HEAP_MIB
    assert 1 <= size.cores <= cores
    # What the spec carries parses back to the same numbers.
    assert parse_cpu_m(size.core_request) == size.core_request_m
    assert parse_spark_memory_mib(size.heap) == size.heap_mib


def test_a_node_with_nothing_free_is_refused() -> None:
    node = NodeShape.create("2", "8Gi", system_reserved=("100m", "1Gi"), daemonset_cpu="1900m")
    with pytest.raises(SizingError, match="nothing is free"):
        size_executors(node)


def test_more_executors_than_cores_is_refused() -> None:
    node = NodeShape.create("4", "16Gi")
    with pytest.raises(SizingError, match="less than one task slot"):
        size_executors(node, executors_per_node=8)


def test_a_heap_below_sparks_minimum_is_refused_with_the_arithmetic() -> None:
    node = NodeShape.create("2", "2Gi", system_reserved=("100m", "512Mi"), daemonset_memory="512Mi")
    with pytest.raises(SizingError, match="Spark needs at least 450 MiB"):
        size_executors(node, executors_per_node=2)


def test_a_pod_larger_than_a_node_can_never_schedule() -> None:
    node = NodeShape.create("4", "16Gi", system_reserved="15%", daemonset_cpu="0")
    with pytest.raises(SizingError, match=r"requests 4 CPU but a node has only 3400m free"):
        node.check_fits(4000, 1024, "stream.executor")
    with pytest.raises(SizingError, match="memory"):
        node.check_fits(1000, 16 * 1024, "stream.executor")


@pytest.mark.parametrize(
    ("text", "millicores"), [("4", 4000), ("3400m", 3400), ("0.5", 500), ("1.25", 1250)]
)
def test_cpu_quantities(text: str, millicores: int) -> None:
    assert parse_cpu_m(text) == millicores
    assert parse_cpu_m(format_cpu(millicores)) == millicores


@pytest.mark.parametrize(
    ("text", "mib"), [("16Gi", 16384), ("512Mi", 512), ("1G", 953), ("1048576Ki", 1024)]
)
def test_memory_quantities(text: str, mib: int) -> None:
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize("bad", ["four", "4 cores", "3400x", ""])
def test_bad_quantities_are_one_line_errors(bad: str) -> None:
    from airpath.deploy import LayerError

    with pytest.raises(LayerError, match="cpu"):
        parse_cpu_m(bad)
