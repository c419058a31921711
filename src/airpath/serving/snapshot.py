"""Field snapshots: a pollution field plus where it came from, and their binary format.

A snapshot is what the streaming job publishes and what routers pick up live: the
:class:`PollutionField` (µg/m³ per edge, pollutant and forecast horizon, with optional
standard deviations), the network build it was made for (:func:`network_key`), the
model version, and how fresh its data is.

The binary format (``.apfs``) is built for big fields: a reader maps the arrays with
``np.frombuffer`` and never touches single values from Python::

    offset 0   magic              8 bytes  b"APFSNAP\\0"
    offset 8   format version     uint32 little-endian (FORMAT_VERSION)
    offset 12  header length      uint32 little-endian, in bytes
    offset 16  header             UTF-8 JSON: metadata, pollutants, horizons, n_edges,
                                  dtype, one entry per array (name, kind, offset,
                                  shape) and the payload's size and CRC32;
                                  space-padded so the payload starts 64-byte aligned
    payload    arrays             contiguous little-endian float32, C order, each of
                                  shape (horizons, n_edges): concentration then
                                  uncertainty, pollutant by pollutant

Float32 keeps about 7 significant digits, far finer than any air-quality estimate, and
halves the bytes moved per snapshot. Decoding validates everything again through
:meth:`PollutionField.create`; any failure is a one-line :class:`SnapshotError`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.errors import FieldError, SnapshotError
from airpath.network.store import Network
from airpath.routing.field import PollutionField

MAGIC = b"APFSNAP\x00"
FORMAT_VERSION = 1
SUFFIX = ".apfs"
_PREFIX = struct.Struct("<8sII")  # magic, format version, header length
_ALIGN = 64
_DTYPE = np.dtype("<f4")
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class FieldSnapshot:
    """A published pollution field with its provenance. Times are timezone-aware UTC.

    ``newest_event_time`` is the event time of the newest reading the field used (None
    for a field made from priors alone); ``stats`` holds a few small numbers about the
    batch (readings used, sensors, ...).
    """

    field: PollutionField
    network_key: str
    model_version: str
    newest_event_time: dt.datetime | None
    published_at: dt.datetime
    batch_id: int | None = None
    stats: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("newest_event_time", "published_at"):
            value = getattr(self, name)
            if value is None:
                continue
            if value.tzinfo is None:
                raise SnapshotError(f"snapshot {name} must be timezone-aware")
            object.__setattr__(self, name, value.astimezone(dt.UTC))
        object.__setattr__(self, "stats", {str(k): float(v) for k, v in self.stats.items()})

    @property
    def version(self) -> str:
        return self.field.version

    @property
    def freshness_s(self) -> float | None:
        """Seconds from the newest reading to publication (None without readings)."""
        if self.newest_event_time is None:
            return None
        return (self.published_at - self.newest_event_time).total_seconds()

    def age_s(self, now: dt.datetime) -> float:
        """Seconds from the newest reading (or from publication, without one) to ``now``."""
        since = self.newest_event_time or self.published_at
        return (now - since).total_seconds()


def network_key(network: Network) -> str:
    """A short stable id of one network build (build time, edge count, bounding box).

    >>> network_key(network)                                  # doctest: +SKIP
    'c0ffee1234abcd56'
    """
    m = network.manifest
    ident = json.dumps(
        {"built_at": m.get("built_at"), "edges": network.n_edges, "bbox": m.get("bbox")},
        sort_keys=True,
    )
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def encode_snapshot(s: FieldSnapshot) -> bytes:
    """The snapshot in the ``.apfs`` binary format (see the module docstring)."""
    fld = s.field
    n_h = len(fld.horizons_min)
    arrays = [("concentration", p, a) for p, a in fld.concentration_ugm3.items()]
    arrays += [("uncertainty", p, a) for p, a in fld.uncertainty_ugm3.items()]
    n_edges = int(arrays[0][2].shape[-1])
    size = n_h * n_edges * _DTYPE.itemsize
    # np.empty, not bytearray: NumPy asks for huge pages on big buffers, which halves the
    # page-fault cost of a 100 MB payload.
    payload = np.empty(size * len(arrays), dtype=np.uint8)
    entries = []
    for k, (kind, name, arr) in enumerate(arrays):
        out = payload[k * size : (k + 1) * size].view(_DTYPE).reshape(n_h, n_edges)
        if arr.max(initial=0.0) > _F32_MAX:
            raise SnapshotError(f"{kind} of {name}: values beyond float32 range")
        out[...] = arr  # float64 → float32, written straight into the payload
        entries.append({"kind": kind, "name": name, "offset": k * size, "shape": [n_h, n_edges]})
    header = {
        "version": fld.version,
        "valid_at": fld.valid_at.isoformat(),
        "horizons_min": list(fld.horizons_min),
        "n_edges": n_edges,
        "dtype": _DTYPE.str,
        "arrays": entries,
        "payload_bytes": int(payload.nbytes),
        "payload_crc32": zlib.crc32(payload.data),
        "network_key": s.network_key,
        "model_version": s.model_version,
        "newest_event_time": _iso(s.newest_event_time),
        "published_at": s.published_at.isoformat(),
        "batch_id": s.batch_id,
        "stats": dict(s.stats),
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    pad = -(_PREFIX.size + len(text)) % _ALIGN
    text += b" " * pad
    return b"".join((_PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)), text, payload.data))


def decode_snapshot(data: bytes | memoryview) -> FieldSnapshot:
    """Read a snapshot written by :func:`encode_snapshot`; raises :class:`SnapshotError`."""
    buf = memoryview(data).cast("B")
    if len(buf) < _PREFIX.size:
        raise SnapshotError(f"snapshot truncated: {len(buf)} bytes, not even a header")
    magic, version, header_len = _PREFIX.unpack_from(buf)
    if magic != MAGIC:
        raise SnapshotError(f"not a field snapshot (magic {bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"snapshot format version {version}, this airpath reads {FORMAT_VERSION}"
        )
    start = _PREFIX.size + header_len
    if len(buf) < start:
        raise SnapshotError(f"snapshot truncated in its header ({len(buf)} of {start} bytes)")
    try:
        h = json.loads(bytes(buf[_PREFIX.size : start]))
        return _from_header(h, buf[start:])
    except SnapshotError:
        raise
    except FieldError as exc:
        raise SnapshotError(f"snapshot holds an invalid field: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"corrupt snapshot header: {type(exc).__name__}: {exc}") from exc


def _from_header(h: dict[str, Any], payload: memoryview) -> FieldSnapshot:
    if h["dtype"] != _DTYPE.str:
        raise SnapshotError(f"snapshot dtype {h['dtype']!r}, want {_DTYPE.str!r}")
    if len(payload) != h["payload_bytes"]:
        raise SnapshotError(
            f"snapshot payload is {len(payload)} bytes, header says {h['payload_bytes']}"
        )
    if zlib.crc32(payload) != h["payload_crc32"]:
        raise SnapshotError("snapshot payload fails its CRC32 check (corrupt)")
    n_edges = int(h["n_edges"])
    conc: dict[str, npt.NDArray[np.float32]] = {}
    unc: dict[str, npt.NDArray[np.float32]] = {}
    for e in h["arrays"]:
        shape = tuple(int(x) for x in e["shape"])
        count, offset = math.prod(shape), int(e["offset"])
        end = offset + count * _DTYPE.itemsize
        if min(shape, default=-1) < 0 or offset < 0 or end > len(payload):
            raise SnapshotError(f"snapshot array {e['name']} lies outside the payload")
        arr = np.frombuffer(payload, _DTYPE, count, offset).reshape(shape)
        {"concentration": conc, "uncertainty": unc}[e["kind"]][str(e["name"])] = arr
    fld = PollutionField.create(
        h["version"],
        dt.datetime.fromisoformat(h["valid_at"]),
        conc,
        n_edges=n_edges,
        horizons_min=tuple(h["horizons_min"]),
        uncertainty_ugm3=unc,
    )
    newest = h["newest_event_time"]
    return FieldSnapshot(
        field=fld,
        network_key=str(h["network_key"]),
        model_version=str(h["model_version"]),
        newest_event_time=None if newest is None else dt.datetime.fromisoformat(newest),
        published_at=dt.datetime.fromisoformat(h["published_at"]),
        batch_id=None if h["batch_id"] is None else int(h["batch_id"]),
        stats=h["stats"],
    )


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat()
