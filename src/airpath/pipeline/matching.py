"""Map-matching inside Spark: readings to street edges, one spatial tile per partition.

Rows are repartitioned by a tile key (``floor(lat/size), floor(lon/size)``), so each task
matches the readings of a few tiles; every worker process holds the network's edge index
once (memory-mapped arrays, loaded on first use — the "broadcast" is the network
directory, which must be readable by every executor: baked into the image or on a shared
volume). A reading farther from any street than its kind's tolerance is rejected
with the reason ``too_far``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd

from airpath.air.matching import EdgeMatcher, MatchReject
from airpath.network.store import Network, load_network

MATCHED_SCHEMA_EXTRA = "edge_id long, match_m double"


@functools.lru_cache(maxsize=4)
def network_at(path: str) -> Network:
    """The network at ``path``, loaded once per worker process."""
    return load_network(path)


@functools.lru_cache(maxsize=4)
def matcher_at(path: str) -> EdgeMatcher:
    return EdgeMatcher(network_at(path))


def match_frames(network_path: str, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: add ``edge_id`` and ``match_m``; reject readings too far."""
    for frame in frames:
        out = frame.copy()
        n = len(out)
        edge_id = np.full(n, -1, dtype=np.int64)
        match_m = np.full(n, np.nan)
        status = out["status"].to_numpy(dtype=object).copy()
        reason = out["reason"].to_numpy(dtype=object).copy()
        message = out["message"].to_numpy(dtype=object).copy()
        payload = out["payload"].to_numpy(dtype=object).copy()
        valid = np.flatnonzero(status == "valid")
        if len(valid):
            matcher = matcher_at(network_path)
            kinds = out["sensor_kind"].to_numpy()[valid]
            edge, dist = matcher.match_points(
                out["lat"].to_numpy(dtype=float)[valid].tolist(),
                out["lon"].to_numpy(dtype=float)[valid].tolist(),
                [matcher.tolerance.for_kind(str(k)) for k in kinds],
            )
            edge_id[valid] = edge
            match_m[valid] = dist
            for i, d in zip(valid[edge < 0].tolist(), dist[edge < 0].tolist(), strict=True):
                status[i] = "rejected"
                reason[i] = MatchReject.TOO_FAR.value
                message[i] = f"{d:.0f} m from the nearest street"
                payload[i] = json.dumps(_record(out.iloc[i]), default=str)
        out["status"], out["reason"], out["message"], out["payload"] = (
            status,
            reason,
            message,
            payload,
        )
        out["edge_id"] = pd.array(np.where(edge_id >= 0, edge_id, 0), dtype="Int64")
        out.loc[edge_id < 0, "edge_id"] = pd.NA
        out["match_m"] = match_m
        yield out


def _record(row: pd.Series) -> dict[str, object]:
    names = ("sensor_id", "sensor_kind", "lat", "lon", "time_ms", "pollutant", "value", "unit")
    return {n: (row[n].item() if hasattr(row[n], "item") else row[n]) for n in names}
