"""What the streaming job remembers of each sensor between micro-batches.

A :class:`SensorMemory` holds, per pollutant, the event times of the sensor's accepted
readings that the watermark has not passed yet (the keys that make a repeat a
``duplicate``), running counts, and the latest reading. :func:`_remember` updates the
memories row by row (the reference), :func:`_remember_columns` on columns with the same
result; :func:`pack_memories` / :func:`unpack_memories` are the state store's value for a
bucket of sensors. :mod:`airpath.air.gate` is the one user.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from airpath.air.rules import Key, RecentKeys


@dataclass
class SensorMemory:
    """What the job keeps of one sensor between micro-batches.

    ``keys`` maps a pollutant to the event times (ms) of its accepted readings that the
    watermark has not yet passed; the rest are running counts and the latest reading
    (served by ``GET /v1/sensors``).
    """

    keys: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)  # sorted
    n_in: int = 0
    n_valid: int = 0
    n_rejected: int = 0
    last_time_ms: int = -1
    last_kind: str = ""
    last_lat: float = math.nan
    last_lon: float = math.nan
    last_value_ugm3: dict[str, float] = field(default_factory=dict)

    def same_as(self, other: SensorMemory) -> bool:
        """Equal, keys included (arrays do not compare with ``==``)."""
        plain = {k: v for k, v in self.__dict__.items() if k != "keys"}
        other_plain = {k: v for k, v in other.__dict__.items() if k != "keys"}
        return (
            json.dumps(plain, sort_keys=True) == json.dumps(other_plain, sort_keys=True)
            and self.keys.keys() == other.keys.keys()
            and all(np.array_equal(self.keys[p], other.keys[p]) for p in self.keys)
        )


class _Remembered(RecentKeys):
    """The keys the memories hold (sorted arrays, searched in place) plus the keys of this
    batch: a bucket remembers millions of keys and a batch looks up a few thousand."""

    def __init__(self, memories: Mapping[str, SensorMemory]) -> None:
        super().__init__(max_size=1)
        self.memories = memories
        self.added: set[Key] = set()

    def __contains__(self, key: object) -> bool:
        if key in self.added:
            return True
        if not isinstance(key, tuple) or len(key) != 3:
            return False
        sensor, t, pollutant = key
        memory = self.memories.get(str(sensor))
        held = memory.keys.get(str(pollutant)) if memory is not None else None
        if held is None or len(held) == 0:
            return False
        i = int(np.searchsorted(held, t))
        return i < len(held) and int(held[i]) == t

    def add(self, key: Key) -> None:
        self.added.add(key)


def _remember(
    memories: Mapping[str, SensorMemory],
    valid: pd.DataFrame,
    rejected: pd.DataFrame,
    horizon_ms: int,
) -> dict[str, SensorMemory]:
    """The memories after this batch: keys older than ``horizon_ms`` are forgotten, since
    a reading that old is rejected as stale or late before duplicates are looked for.
    Lines that name no sensor are counted by the job, not per sensor."""
    out = {k: _copy(m, horizon_ms) for k, m in memories.items()}
    for sensor in rejected["sensor_id"].tolist():
        if sensor is not None:
            m = out.setdefault(sensor, SensorMemory())
            m.n_in += 1
            m.n_rejected += 1
    rows = zip(
        valid["sensor_id"].tolist(),
        valid["pollutant"].tolist(),
        valid["time_ms"].tolist(),
        valid["value_ugm3"].tolist(),
        valid["sensor_kind"].tolist(),
        valid["lat"].tolist(),
        valid["lon"].tolist(),
        strict=True,
    )
    newest_of: dict[tuple[str, str], int] = {}
    new_keys: dict[tuple[str, str], list[int]] = {}
    for sensor, p, t, v, kind, lat, lon in rows:
        m = out.setdefault(sensor, SensorMemory())
        m.n_in += 1
        m.n_valid += 1
        if t >= horizon_ms:
            new_keys.setdefault((sensor, p), []).append(t)
        if t >= newest_of.get((sensor, p), -1):
            newest_of[(sensor, p)] = t
            if t >= m.last_time_ms - 60_000:
                m.last_value_ugm3[p] = v
        if t >= m.last_time_ms:
            m.last_time_ms, m.last_kind, m.last_lat, m.last_lon = t, kind, lat, lon
    for (sensor, p), ts in new_keys.items():
        m = out[sensor]
        old = m.keys.get(p)
        # Accepted keys are new by construction (repeats were rejected), so a merge
        # needs no de-duplication.
        fresh = np.asarray(ts, dtype=np.int64)
        merged = fresh if old is None else np.concatenate([old, fresh])
        merged.sort(kind="stable")
        m.keys[p] = merged
    for m in out.values():
        m.keys = {p: ts for p, ts in sorted(m.keys.items()) if len(ts)}
    return out


def _remember_columns(
    memories: Mapping[str, SensorMemory],
    valid: pd.DataFrame,
    rejected: pd.DataFrame,
    horizon_ms: int,
) -> dict[str, SensorMemory]:
    """:func:`_remember` on columns: the same memories, in the same order, with Python work
    per sensor and per (sensor, pollutant) rather than per row.

    The row loop of :func:`_remember` keeps, per sensor, the newest time so far
    (``last_time_ms``, from the memory) and, per (sensor, pollutant), the newest time so far
    in this batch (from -1). A row updates ``last_value_ugm3`` when its time is at least
    both (the first less a minute); the last such row of a pollutant wins. The latest row
    of a sensor (the last one with its newest time, if that is not older than the memory's)
    sets ``last_*``. Held keys are sorted, so pruning them is a slice.
    """
    out = {k: _pruned(m, horizon_ms) for k, m in memories.items()}
    for sensor in rejected["sensor_id"].tolist():
        if sensor is not None:
            m = out.setdefault(sensor, SensorMemory())
            m.n_in += 1
            m.n_rejected += 1
    if len(valid):
        _remember_valid(out, valid, horizon_ms)
    for m in out.values():
        m.keys = {p: ts for p, ts in sorted(m.keys.items()) if len(ts)}
    return out


def _remember_valid(out: dict[str, SensorMemory], valid: pd.DataFrame, horizon_ms: int) -> None:
    codes, sensor_names = pd.factorize(valid["sensor_id"].to_numpy(), sort=False)
    p_codes, p_names = pd.factorize(valid["pollutant"].to_numpy(), sort=False)
    sensor = codes.astype(np.int64)
    n_p = len(p_names)
    group = sensor * n_p + p_codes.astype(np.int64)
    t = valid["time_ms"].to_numpy(dtype=np.int64)
    value = valid["value_ugm3"].to_numpy(dtype=np.float64)
    held = [out.setdefault(name, SensorMemory()) for name in sensor_names.tolist()]
    pollutants = p_names.tolist()
    for m, n in zip(held, np.bincount(sensor, minlength=len(held)).tolist(), strict=True):
        m.n_in += n
        m.n_valid += n
    last0 = np.fromiter((m.last_time_ms for m in held), np.int64, len(held))
    newest_sensor = _newest_before(sensor, t, last0)
    newest_group = _newest_before(group, t, np.full(len(held) * n_p, -1, np.int64))
    update = np.flatnonzero((t >= newest_group) & (t >= newest_sensor - 60_000))
    if len(update):
        updated = group[update]
        groups, first = np.unique(updated, return_index=True)
        _, last_reversed = np.unique(updated[::-1], return_index=True)
        values = value[update[len(update) - 1 - last_reversed]].tolist()
        groups_list = groups.tolist()
        for k in np.argsort(first, kind="stable").tolist():  # new pollutants in row order
            g = groups_list[k]
            held[g // n_p].last_value_ugm3[pollutants[g % n_p]] = values[k]
    newest = np.full(len(held), np.iinfo(np.int64).min, np.int64)
    np.maximum.at(newest, sensor, t)
    latest = np.full(len(held), -1, np.int64)
    at_newest = np.flatnonzero(t == newest[sensor])
    np.maximum.at(latest, sensor[at_newest], at_newest)
    kind = valid["sensor_kind"].to_numpy()
    lat, lon = valid["lat"].to_numpy(np.float64), valid["lon"].to_numpy(np.float64)
    moved = np.flatnonzero(newest >= last0)
    rows = latest[moved]
    for k, t_k, kind_k, lat_k, lon_k in zip(
        moved.tolist(),
        newest[moved].tolist(),
        kind[rows].tolist(),
        lat[rows].tolist(),
        lon[rows].tolist(),
        strict=True,
    ):
        m = held[k]
        m.last_time_ms, m.last_kind, m.last_lat, m.last_lon = t_k, kind_k, lat_k, lon_k
    fresh = np.flatnonzero(t >= horizon_ms)
    if not len(fresh):
        return
    order = fresh[np.lexsort((t[fresh], group[fresh]))]
    g_sorted = group[order]
    starts = np.flatnonzero(np.append(True, g_sorted[1:] != g_sorted[:-1]))
    t_sorted = t[order]  # pieces of it are kept as views: nothing else holds or changes it
    bounds = zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True)
    pieces = [t_sorted[a:b] for a, b in bounds]
    for g, ts in zip(g_sorted[starts].tolist(), pieces, strict=True):
        m, p = held[g // n_p], pollutants[g % n_p]
        old = m.keys.get(p)
        if old is None:
            m.keys[p] = ts
        elif len(old) and old[-1] > ts[0]:
            merged = np.concatenate([old, ts])
            merged.sort(kind="stable")
            m.keys[p] = merged
        else:
            m.keys[p] = np.concatenate([old, ts])


def _newest_before(
    group: npt.NDArray[np.int64], t: npt.NDArray[np.int64], start: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Per row, the largest of ``start[group]`` and the times of earlier rows of its group."""
    order = np.argsort(group, kind="stable")
    g, ts = group[order], t[order]
    first = np.ones(len(g), dtype=np.bool_)
    first[1:] = g[1:] != g[:-1]
    rank = np.cumsum(first) - 1
    low, span = int(ts.min()), int(ts.max()) - int(ts.min()) + 1
    if (int(rank[-1]) + 1) * span < 2**62:
        # A running maximum over groups that are stacked above one another is a running
        # maximum within each group.
        stacked = rank * span + (ts - low)
        so_far = np.maximum.accumulate(stacked) - rank * span + low
    else:
        so_far = pd.Series(ts).groupby(g).cummax().to_numpy(dtype=np.int64)
    before = np.empty_like(ts)
    before[1:] = so_far[:-1]
    before[first] = start[g[first]]
    out = np.empty_like(before)
    out[order] = np.maximum(before, start[g])
    return out


def _pruned(m: SensorMemory, horizon_ms: int) -> SensorMemory:
    """:func:`_copy` for sorted keys: the kept keys are a slice (a view, not a copy)."""
    return replace(
        m,
        keys={
            p: ts if not len(ts) or ts[0] >= horizon_ms else ts[ts.searchsorted(horizon_ms) :]
            for p, ts in m.keys.items()
        },
        last_value_ugm3=dict(m.last_value_ugm3),
    )


def _copy(m: SensorMemory, horizon_ms: int) -> SensorMemory:
    """``m`` without the keys older than ``horizon_ms``, sharing nothing mutable."""
    return replace(
        m,
        keys={p: ts[ts >= horizon_ms] for p, ts in m.keys.items()},
        last_value_ugm3=dict(m.last_value_ugm3),
    )


def pack_memories(memories: Mapping[str, SensorMemory]) -> tuple[str, bytes]:
    """One bucket's memories as the state store's value: JSON for the small fields, and
    every key array concatenated into one little-endian int64 blob (at high rates a
    bucket remembers millions of keys; as JSON numbers they would dominate the batch)."""
    meta: dict[str, Any] = {}
    arrays: list[npt.NDArray[np.int64]] = []
    for sensor, m in sorted(memories.items()):
        item = {k: v for k, v in m.__dict__.items() if k != "keys"}
        item["key_counts"] = [[p, len(a)] for p, a in sorted(m.keys.items())]
        arrays.extend(a for _, a in sorted(m.keys.items()))
        meta[sensor] = item
    blob = np.concatenate(arrays).astype("<i8").tobytes() if arrays else b""
    return json.dumps(meta, separators=(",", ":"), allow_nan=True), blob


def unpack_memories(text: str | None, blob: bytes | None) -> dict[str, SensorMemory]:
    if not text:
        return {}
    keys = np.frombuffer(blob or b"", dtype="<i8")
    out: dict[str, SensorMemory] = {}
    at = 0
    for sensor, item in json.loads(text).items():
        arrays = {}
        for p, n in item.pop("key_counts"):
            arrays[p] = keys[at : at + n].astype(np.int64)
            at += n
        out[sensor] = SensorMemory(keys=arrays, **item)
    return out
