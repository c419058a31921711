"""Executor sizing: from a node shape to executor pods that schedule and bin-pack.

A node's *capacity* is not what pods get. The kubelet subtracts ``kube-reserved``,
``system-reserved`` and the eviction threshold to get *allocatable*, and every
DaemonSet (CNI, kube-proxy, log and metrics agents) takes its requests from that before
any Spark pod lands (`node allocatable`_). Sizing executors to the nominal shape gives
pods that stay ``Pending`` forever ("Insufficient cpu"); sizing them to a round number
below it wastes the rest of every node.

The rules here, for ``n`` executors per node:

* the CPU **request** (``spark.kubernetes.executor.request.cores``) is the node's free
  millicores divided by ``n``, rounded down to 100m: 4 cores with 600m taken by the system
  and DaemonSets give ``3400m``;
* the **task slots** (``spark.executor.cores``) follow the node's whole cores divided by
  ``n``: Spark counts slots in whole cores, Kubernetes counts requests in millicores, and
  a node's 4 cores still run 4 tasks when a few hundred millicores are reserved for
  agents that rarely use them. No CPU limit is set: CFS throttling of a JVM costs more
  than sharing idle cycles (the Spark default, ``spark.kubernetes.executor.limit.cores``
  unset);
* the pod **memory** is the node's free memory divided by ``n``; Spark requests
  ``spark.executor.memory + memoryOverhead`` and sets the limit equal, with the overhead
  ``max(factor × heap, 384 MiB)`` (`Spark on Kubernetes`_): factor 0.4 for PySpark,
  whose Python workers live in the overhead, 0.1 for JVM-only jobs. So the heap is
  ``pod / (1 + factor)`` unless the 384 MiB floor binds.

Sizes that can never run are refused with the arithmetic that rules them out.

>>> node = NodeShape.create("4", "16Gi", system_reserved=("100m", "1Gi"),
...                         daemonset_cpu="500m", daemonset_memory="1Gi")
>>> size = size_executors(node, workload="pyspark")
>>> size.cores, size.core_request, size.heap, size.overhead
(4, '3400m', '10g', '4g')

.. _node allocatable:
   https://kubernetes.io/docs/tasks/administer-cluster/reserve-compute-resources/
.. _Spark on Kubernetes: https://spark.apache.org/docs/latest/running-on-kubernetes.html
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from airpath.deploy.errors import SizingError
from airpath.deploy.quantity import (
    format_cpu,
    format_memory,
    format_spark_memory,
    parse_cpu_m,
    parse_memory_mib,
)

Workload = Literal["pyspark", "jvm"]
OVERHEAD_FACTOR: dict[str, float] = {"pyspark": 0.4, "jvm": 0.1}
MIN_OVERHEAD_MIB = 384  # Spark's MEMORY_OVERHEAD_MIN_MIB
# Spark refuses executors below 1.5 × its 300 MiB reserved memory (UnifiedMemoryManager).
MIN_HEAP_MIB = 450
MAX_CORES_PER_EXECUTOR = 5  # beyond ~5 concurrent tasks per JVM, GC and I/O contention grow
REQUEST_STEP_M = 100  # requests in 100m steps keep headroom for small DaemonSet changes
DEFAULT_DAEMONSET_CPU_M = 200  # kube-proxy 100m + CNI and a log agent, typical managed node
DEFAULT_DAEMONSET_MEMORY_MIB = 512
EVICTION_THRESHOLD_MIB = 100  # kubelet's default memory.available hard eviction


def default_reserved(cores_m: int, memory_mib: int) -> tuple[int, int]:
    """kube-reserved + system-reserved + eviction as GKE computes them (EKS and AKS use
    similar tiers): CPU 6 % of the first core, 1 % of the second, 0.5 % of cores 3–4,
    0.25 % above; memory 25 % of the first 4 GiB, 20 % of the next 4, 10 % of the next 8,
    6 % of the next 112, 2 % above 128 GiB, plus the 100 MiB eviction threshold. Source:
    https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes
    """
    cpu_tiers = ((1000, 0.06), (1000, 0.01), (2000, 0.005), (math.inf, 0.0025))
    mem_tiers = ((4096, 0.25), (4096, 0.20), (8192, 0.10), (114688, 0.06), (math.inf, 0.02))
    return _tiered(cores_m, cpu_tiers), _tiered(memory_mib, mem_tiers) + EVICTION_THRESHOLD_MIB


def _tiered(amount: int, tiers: tuple[tuple[float, float], ...]) -> int:
    total, left = 0.0, float(amount)
    for width, share in tiers:
        step = min(left, width)
        total += step * share
        left -= step
        if left <= 0:
            break
    return math.ceil(total)


@dataclass(frozen=True)
class NodeShape:
    """One node of a pool: capacity, what the system reserves, what DaemonSets take."""

    cores_m: int
    memory_mib: int
    reserved_cpu_m: int
    reserved_memory_mib: int
    daemonset_cpu_m: int
    daemonset_memory_mib: int

    @classmethod
    def create(
        cls,
        cores: str | int,
        memory: str,
        *,
        system_reserved: tuple[str, str] | str | None = None,
        daemonset_cpu: str | None = None,
        daemonset_memory: str | None = None,
    ) -> NodeShape:
        """From Kubernetes quantities. ``system_reserved`` is ``(cpu, memory)``, a share
        of capacity like ``"15%"``, or ``None`` for :func:`default_reserved`."""
        cores_m = parse_cpu_m(cores, "node cores")
        memory_mib = parse_memory_mib(memory, "node memory")
        if cores_m <= 0 or memory_mib <= 0:
            raise SizingError(f"a node needs CPU and memory, got {cores} cores and {memory}")
        if system_reserved is None:
            reserved_cpu, reserved_mem = default_reserved(cores_m, memory_mib)
        elif isinstance(system_reserved, str):
            share = _percent(system_reserved)
            reserved_cpu = math.ceil(cores_m * share)
            reserved_mem = math.ceil(memory_mib * share)
        else:
            reserved_cpu = parse_cpu_m(system_reserved[0], "system-reserved cpu")
            reserved_mem = parse_memory_mib(system_reserved[1], "system-reserved memory")
        return cls(
            cores_m=cores_m,
            memory_mib=memory_mib,
            reserved_cpu_m=reserved_cpu,
            reserved_memory_mib=reserved_mem,
            daemonset_cpu_m=(
                DEFAULT_DAEMONSET_CPU_M
                if daemonset_cpu is None
                else parse_cpu_m(daemonset_cpu, "daemonset cpu")
            ),
            daemonset_memory_mib=(
                DEFAULT_DAEMONSET_MEMORY_MIB
                if daemonset_memory is None
                else parse_memory_mib(daemonset_memory, "daemonset memory")
            ),
        )

    @property
    def allocatable_cpu_m(self) -> int:
        return self.cores_m - self.reserved_cpu_m

    @property
    def allocatable_memory_mib(self) -> int:
        return self.memory_mib - self.reserved_memory_mib

    @property
    def free_cpu_m(self) -> int:
        """Millicores left for our pods once the system and DaemonSets took theirs."""
        return self.allocatable_cpu_m - self.daemonset_cpu_m

    @property
    def free_memory_mib(self) -> int:
        return self.allocatable_memory_mib - self.daemonset_memory_mib

    def describe(self) -> str:
        return (
            f"{format_cpu(self.cores_m)} cores / {format_memory(self.memory_mib)}: "
            f"reserved {format_cpu(self.reserved_cpu_m)} / "
            f"{format_memory(self.reserved_memory_mib)}, DaemonSets "
            f"{format_cpu(self.daemonset_cpu_m)} / {format_memory(self.daemonset_memory_mib)}, "
            f"free {format_cpu(self.free_cpu_m)} / {format_memory(self.free_memory_mib)}"
        )

    def check_fits(self, cpu_m: int, memory_mib: int, what: str) -> None:
        """Refuse a pod that no node of this shape can ever hold."""
        if self.free_cpu_m <= 0 or self.free_memory_mib <= 0:
            raise SizingError(f"{what}: nothing is free on a node of {self.describe()}")
        if cpu_m > self.free_cpu_m:
            raise SizingError(
                f"{what} requests {format_cpu(cpu_m)} CPU but a node has only "
                f"{format_cpu(self.free_cpu_m)} free ({self.describe()}); "
                "it can never schedule"
            )
        if memory_mib > self.free_memory_mib:
            raise SizingError(
                f"{what} requests {format_memory(memory_mib)} memory (heap + overhead) but a "
                f"node has only {format_memory(self.free_memory_mib)} free "
                f"({self.describe()}); it can never schedule"
            )


def _percent(text: str) -> float:
    value = text.strip()
    if not value.endswith("%"):
        raise SizingError(
            f"system-reserved takes CPU,MEMORY (100m,1Gi) or a share (15%), got {text!r}"
        )
    try:
        share = float(value[:-1]) / 100.0
    except ValueError:
        raise SizingError(f"system-reserved: not a percentage: {text!r}") from None
    if not 0.0 <= share < 1.0:
        raise SizingError(f"system-reserved must be 0–99 %, got {text!r}")
    return share


def overhead_mib(heap_mib: int, workload: str) -> int:
    """Spark's memory overhead for a heap: ``max(factor × heap, 384 MiB)``."""
    return max(math.floor(OVERHEAD_FACTOR[workload] * heap_mib), MIN_OVERHEAD_MIB)


def split_pod_memory(pod_mib: int, workload: str) -> tuple[int, int]:
    """The largest (heap, overhead) whose sum fits in ``pod_mib``."""
    factor = OVERHEAD_FACTOR[workload]
    heap = math.floor(pod_mib / (1.0 + factor))
    if factor * heap < MIN_OVERHEAD_MIB:
        heap = pod_mib - MIN_OVERHEAD_MIB
    return heap, pod_mib - heap


@dataclass(frozen=True)
class ExecutorSize:
    """One executor pod, and how many fill a node."""

    executors_per_node: int
    cores: int  # spark.executor.cores: task slots
    core_request_m: int  # spark.kubernetes.executor.request.cores
    heap_mib: int  # spark.executor.memory
    overhead_mib: int  # spark.executor.memoryOverhead
    workload: str
    node: NodeShape

    @property
    def core_request(self) -> str:
        return format_cpu(self.core_request_m)

    @property
    def heap(self) -> str:
        return format_spark_memory(self.heap_mib)

    @property
    def overhead(self) -> str:
        return format_spark_memory(self.overhead_mib)

    @property
    def pod_memory_mib(self) -> int:
        return self.heap_mib + self.overhead_mib

    def spark_conf(self) -> dict[str, str]:
        """The Spark properties this size stands for."""
        return {
            "spark.executor.cores": str(self.cores),
            "spark.kubernetes.executor.request.cores": self.core_request,
            "spark.executor.memory": self.heap,
            "spark.executor.memoryOverhead": self.overhead,
            "spark.executor.memoryOverheadFactor": str(OVERHEAD_FACTOR[self.workload]),
        }

    def report(self) -> str:
        """A few lines for people: the node, the executors, what is left over."""
        n = self.executors_per_node
        left_cpu = self.node.free_cpu_m - n * self.core_request_m
        left_mem = self.node.free_memory_mib - n * self.pod_memory_mib
        lines = [
            f"node       {self.node.describe()}",
            f"executors  {n} per node, {self.cores} task slots each ({self.workload})",
            f"pod        request {self.core_request} CPU, "
            f"{format_memory(self.pod_memory_mib)} memory "
            f"(heap {self.heap} + overhead {self.overhead})",
            f"left over  {format_cpu(left_cpu)} CPU, {format_memory(left_mem)} memory per node",
        ]
        lines += [f"--conf {k}={v}" for k, v in self.spark_conf().items()]
        return "\n".join(lines)


def default_executors_per_node(node: NodeShape) -> int:
    """Enough executors that none has more than five task slots."""
    return max(1, math.ceil((node.cores_m // 1000) / MAX_CORES_PER_EXECUTOR))


def size_executors(
    node: NodeShape, *, workload: str = "pyspark", executors_per_node: int | None = None
) -> ExecutorSize:
    """Executors that fill ``node`` exactly ``executors_per_node`` times (see module doc)."""
    if workload not in OVERHEAD_FACTOR:
        raise SizingError(f"workload must be pyspark or jvm, got {workload!r}")
    n = executors_per_node or default_executors_per_node(node)
    node_cores = node.cores_m // 1000
    if n < 1:
        raise SizingError(f"executors per node must be at least 1, got {n}")
    if node.free_cpu_m <= 0 or node.free_memory_mib <= 0:
        raise SizingError(f"no executor fits: nothing is free on a node of {node.describe()}")
    if n > node_cores:
        raise SizingError(
            f"{n} executors per node would get less than one task slot each on a "
            f"{node_cores}-core node"
        )
    request_m = (node.free_cpu_m // n) // REQUEST_STEP_M * REQUEST_STEP_M
    if request_m < REQUEST_STEP_M:
        raise SizingError(
            f"{n} executors per node would request under {REQUEST_STEP_M}m CPU each "
            f"({node.describe()})"
        )
    heap, overhead = split_pod_memory(node.free_memory_mib // n, workload)
    if heap < MIN_HEAP_MIB:
        raise SizingError(
            f"{n} executors per node leave {heap} MiB of heap each after {overhead} MiB "
            f"overhead ({node.describe()}); Spark needs at least {MIN_HEAP_MIB} MiB"
        )
    return ExecutorSize(
        executors_per_node=n,
        cores=max(1, node_cores // n),
        core_request_m=request_m,
        heap_mib=heap,
        overhead_mib=overhead,
        workload=workload,
        node=node,
    )
