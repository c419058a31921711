"""Spatial tiles: the unit by which the job splits per-edge work across executors.

A tile is a cell of ``size_deg`` × ``size_deg`` degrees; an edge belongs to the tile of
its midpoint, a reading to the tile of its position. :func:`evaluate_field` evaluates a
:class:`~airpath.air.plan.FieldPlan` one group of tiles per Spark task; every executor
reads the network from its directory, so only the small plan travels with the tasks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.air.estimate import EdgeSpace
from airpath.air.plan import FieldPlan
from airpath.pipeline.matching import network_at

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@functools.lru_cache(maxsize=4)
def space_at(path: str) -> EdgeSpace:
    return EdgeSpace.from_network(network_at(path))


@functools.lru_cache(maxsize=8)
def edge_tiles(path: str, size_deg: float) -> tuple[IntArray, IntArray]:
    """(edge ids sorted by tile, start offset of each tile in them, plus the end)."""
    net = network_at(path)
    lat = np.asarray(net.node_lat, dtype=np.float64)
    lon = np.asarray(net.node_lon, dtype=np.float64)
    tail, head = np.asarray(net.edge_tail), np.asarray(net.edge_head)
    ty = np.floor(0.5 * (lat[tail] + lat[head]) / size_deg).astype(np.int64)
    tx = np.floor(0.5 * (lon[tail] + lon[head]) / size_deg).astype(np.int64)
    _, tile = np.unique(np.column_stack([ty, tx]), axis=0, return_inverse=True)
    tile = tile.reshape(-1)
    order = np.argsort(tile, kind="stable")
    starts = np.searchsorted(tile[order], np.arange(int(tile.max()) + 2))
    return order.astype(np.int64), starts.astype(np.int64)


def _evaluate_tiles(
    path: str, size_deg: float, plan: FieldPlan, tiles: Iterator[int]
) -> Iterator[tuple[int, int, bytes, dict[str, tuple[bytes, bytes]]]]:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    partition = ctx.partitionId() if ctx is not None else -1
    order, starts = edge_tiles(path, size_deg)
    space = space_at(path)
    for tile in tiles:
        edges = order[starts[tile] : starts[tile + 1]]
        values = plan.evaluate(space, edges)
        yield (
            partition,
            os.getpid(),
            edges.tobytes(),
            {p: (m.tobytes(), s.tobytes()) for p, (m, s) in values.items()},
        )


def evaluate_field(
    spark: Any, path: str, size_deg: float, plan: FieldPlan, n_edges: int, n_tasks: int
) -> tuple[dict[str, tuple[FloatArray, FloatArray]], set[int]]:
    """The plan on every edge, one task per group of tiles; also the partitions used."""
    _, starts = edge_tiles(path, size_deg)
    n_tiles = len(starts) - 1
    rdd = spark.sparkContext.parallelize(range(n_tiles), max(1, min(n_tasks, n_tiles)))
    parts = rdd.mapPartitions(lambda it: _evaluate_tiles(path, size_deg, plan, it)).collect()
    n_h = len(plan.horizons_min)
    out = {p: (np.empty((n_h, n_edges)), np.empty((n_h, n_edges))) for p in plan.pollutants}
    seen = np.zeros(n_edges, dtype=bool)
    used: set[int] = set()
    for partition, _pid, edge_bytes, values in parts:
        edges = np.frombuffer(edge_bytes, dtype=np.int64)
        used.add(int(partition))
        seen[edges] = True
        for p, (m, s) in values.items():
            out[p][0][:, edges] = np.frombuffer(m, dtype=np.float64).reshape(n_h, -1)
            out[p][1][:, edges] = np.frombuffer(s, dtype=np.float64).reshape(n_h, -1)
    if not seen.all():  # every edge has a tile, so this is a bug, not bad input
        raise RuntimeError(f"{int((~seen).sum())} edges missing from the tiled field")
    return out, used
