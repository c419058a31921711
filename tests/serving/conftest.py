"""Serving fixtures: a real redis-server per test, snapshot factories, deadline polling.

Redis is never mocked here: the Redis store and the subscriber are tested against a
``redis-server`` started on a free port (no persistence) and stopped in teardown. A test
can ``stop()`` and ``start()`` the same server on the same port to play an outage.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from airpath import PollutionField
from airpath.network.store import Network
from airpath.serving import FieldSnapshot, network_key
from airpath.serving.snapshot import MAGIC
from servers import RedisServer, wait_until

T0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def make_snapshot(
    version: str,
    *,
    key: str = "net-a",
    n_edges: int = 20,
    pollutants: tuple[str, ...] = ("no2", "pm25"),
    horizons_min: tuple[float, ...] = (0.0, 15.0),
    level: float = 10.0,
    newest: dt.datetime | None = T0,
    published_at: dt.datetime | None = None,
) -> FieldSnapshot:
    """A small snapshot whose values are ``level`` plus a ramp over the edges."""
    ramp = np.linspace(0.0, 1.0, n_edges)
    conc = {p: np.tile(level + k + ramp, (len(horizons_min), 1)) for k, p in enumerate(pollutants)}
    unc = {p: np.full((len(horizons_min), n_edges), 0.5) for p in pollutants}
    fld = PollutionField.create(
        version, T0, conc, n_edges=n_edges, horizons_min=horizons_min, uncertainty_ugm3=unc
    )
    published = published_at or (newest or T0) + dt.timedelta(seconds=30)
    return FieldSnapshot(
        fld, key, "test-model-1", newest, published, batch_id=7, stats={"readings": 12.0}
    )


@pytest.fixture
def snap() -> Callable[..., FieldSnapshot]:
    return make_snapshot


@pytest.fixture
def helsinki_snap(helsinki: Network) -> Callable[..., FieldSnapshot]:
    """Snapshots for the Helsinki network, every pollutant, horizons 0/15/30/60 min.
    ``key`` overrides the network key (to play a snapshot for another network)."""

    def make(version: str, level: float = 20.0, key: str | None = None) -> FieldSnapshot:
        now = dt.datetime.now(dt.UTC)
        n = helsinki.n_edges
        conc = {p: np.full((4, n), level + k) for k, p in enumerate(helsinki.pollutants)}
        fld = PollutionField.create(version, now, conc, n_edges=n, horizons_min=(0, 15, 30, 60))
        return FieldSnapshot(fld, key or network_key(helsinki), "test-model-1", now, now)

    return make


def encode_snapshot_v1(s: FieldSnapshot) -> bytes:
    """``s`` as airpath wrote snapshots in format version 1 (the encoder of that version,
    kept here to show that such snapshots are still read)."""
    fld = s.field
    n_h = len(fld.horizons_min)
    arrays = [("concentration", p, a) for p, a in fld.concentration_ugm3.items()]
    arrays += [("uncertainty", p, a) for p, a in fld.uncertainty_ugm3.items()]
    n_edges = int(arrays[0][2].shape[-1])
    size = n_h * n_edges * 4
    payload = np.empty(size * len(arrays), dtype=np.uint8)
    entries = []
    for k, (kind, name, arr) in enumerate(arrays):
        payload[k * size : (k + 1) * size].view("<f4").reshape(n_h, n_edges)[...] = arr
        entries.append({"kind": kind, "name": name, "offset": k * size, "shape": [n_h, n_edges]})
    header = {
        "version": fld.version,
        "valid_at": fld.valid_at.isoformat(),
        "horizons_min": list(fld.horizons_min),
        "n_edges": n_edges,
        "dtype": "<f4",
        "arrays": entries,
        "payload_bytes": int(payload.nbytes),
        "payload_crc32": zlib.crc32(payload.data),
        "network_key": s.network_key,
        "model_version": s.model_version,
        "newest_event_time": None
        if s.newest_event_time is None
        else s.newest_event_time.isoformat(),
        "published_at": s.published_at.isoformat(),
        "batch_id": s.batch_id,
        "stats": dict(s.stats),
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(16 + len(text)) % 64)
    return b"".join((struct.pack("<8sII", MAGIC, 1, len(text)), text, payload.data))


@pytest.fixture
def encode_v1() -> Callable[[FieldSnapshot], bytes]:
    return encode_snapshot_v1


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., None]:
    return wait_until
