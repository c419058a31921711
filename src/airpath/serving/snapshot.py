"""Field snapshots: a pollution field plus where it came from, and their binary format.

A snapshot is what the streaming job publishes and what routers pick up live: the
:class:`PollutionField` (µg/m³ per edge, pollutant and forecast horizon, with optional
standard deviations), the network build it was made for (:func:`network_key`), the
model version, and how fresh its data is.

The binary format (``.apfs``) is built for big fields: a reader maps the arrays with
``np.frombuffer`` and never touches single values from Python. Every byte is checked
before anything is used: the header by its own CRC32, each array by its CRC32, and the
arrays must tile the payload exactly::

    offset 0   magic              8 bytes  b"APFSNAP\\0"
    offset 8   format version     uint32 little-endian (FORMAT_VERSION, 2)
    offset 12  header length      uint32 little-endian, in bytes
    offset 16  header CRC32       uint32 little-endian, of the header bytes (padding too)
    offset 20  header             UTF-8 JSON: metadata, pollutants, horizons, n_edges,
                                  dtype, one entry per array (name, kind, offset, shape
                                  and the CRC32 of its bytes as 8 hex digits) and the
                                  payload's size; space-padded so the payload starts
                                  64-byte aligned
    payload    arrays             contiguous little-endian float32, C order, each of
                                  shape (horizons, n_edges): concentration then
                                  uncertainty, pollutant by pollutant; nothing else

Version 1 (still read) had a 16-byte prefix without the header CRC, and one CRC32 of the
whole payload in the header (``payload_crc32``) instead of one per array.

Float32 keeps about 7 significant digits, far finer than any air-quality estimate, and
halves the bytes moved per snapshot. Decoding validates everything again through
:meth:`PollutionField.create`; any failure is a one-line :class:`SnapshotError`.

A 1M-edge field (3 pollutants × 4 horizons, mean and standard deviation) is 96 MB; the
stores move it without extra copies: :func:`encode_snapshot_buffer` converts the arrays
straight into one buffer that is written or sent as it is, and :func:`decode_snapshot`
takes any buffer (a file read into an array, chunks assembled from Redis).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.errors import FieldError, SnapshotError
from airpath.network.store import Network
from airpath.routing.field import PollutionField

MAGIC = b"APFSNAP\x00"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
SUFFIX = ".apfs"
_MAGIC_VERSION = struct.Struct("<8sI")
_PREFIX = struct.Struct("<8sIII")  # magic, format version, header length, header CRC32
_PREFIX_V1 = struct.Struct("<8sII")  # magic, format version, header length
_ALIGN = 64
_DTYPE = np.dtype("<f4")
_CRC_PLACEHOLDER = "0" * 8  # array CRCs are 8 hex digits: the header's length is known early


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
    """The snapshot in the ``.apfs`` binary format (see the module docstring).

    A copy of :func:`encode_snapshot_buffer` as ``bytes``; the stores use the buffer.
    """
    return encode_snapshot_buffer(s).tobytes()


def encode_snapshot_buffer(
    s: FieldSnapshot, alloc: Callable[[int], npt.NDArray[np.uint8]] | None = None
) -> memoryview:
    """The snapshot in the ``.apfs`` binary format, in one buffer (a byte memoryview).

    The arrays are converted to float32 straight into their place in the buffer and each
    one's CRC32 taken there, so nothing is copied again; write or send the buffer as it
    is. ``alloc(size)`` gives the buffer (a uint8 array of that size; a fresh one by
    default): the stores reuse one between publishes. Raises :class:`SnapshotError` for
    values beyond the float32 range.
    """
    fld = s.field
    n_h = len(fld.horizons_min)
    arrays = [("concentration", p, a) for p, a in fld.concentration_ugm3.items()]
    arrays += [("uncertainty", p, a) for p, a in fld.uncertainty_ugm3.items()]
    n_edges = int(arrays[0][2].shape[-1])
    size = n_h * n_edges * _DTYPE.itemsize
    entries: list[dict[str, Any]] = [
        {
            "kind": kind,
            "name": name,
            "offset": k * size,
            "shape": [n_h, n_edges],
            "crc32": _CRC_PLACEHOLDER,
        }
        for k, (kind, name, _) in enumerate(arrays)
    ]
    header = {
        "version": fld.version,
        "valid_at": fld.valid_at.isoformat(),
        "horizons_min": list(fld.horizons_min),
        "n_edges": n_edges,
        "dtype": _DTYPE.str,
        "arrays": entries,
        "payload_bytes": size * len(arrays),
        "network_key": s.network_key,
        "model_version": s.model_version,
        "newest_event_time": _iso(s.newest_event_time),
        "published_at": s.published_at.isoformat(),
        "batch_id": s.batch_id,
        "stats": dict(s.stats),
    }
    text_len = len(_header_text(header))
    start = _PREFIX.size + text_len
    buf = (alloc or _new_buffer)(start + size * len(arrays))
    for k, (kind, name, arr) in enumerate(arrays):
        out = buf[start + k * size : start + (k + 1) * size].view(_DTYPE).reshape(n_h, n_edges)
        try:
            with np.errstate(over="raise"):  # float64 → float32 overflow raises
                np.copyto(out, arr, casting="same_kind")
        except FloatingPointError:
            raise SnapshotError(f"{kind} of {name}: values beyond float32 range") from None
        entries[k]["crc32"] = f"{zlib.crc32(out.data):08x}"
    text = _header_text(header)
    if len(text) != text_len:  # cannot happen: the CRCs have a fixed width
        raise AssertionError("snapshot header changed length while encoding")
    buf[_PREFIX.size : start] = np.frombuffer(text, dtype=np.uint8)
    _PREFIX.pack_into(buf.data, 0, MAGIC, FORMAT_VERSION, len(text), zlib.crc32(text))
    return buf.data


def _new_buffer(size: int) -> npt.NDArray[np.uint8]:
    # np.empty rather than bytearray: NumPy asks for huge pages on big buffers, which
    # halves the page-fault cost of a 100 MB snapshot (when the kernel has them at hand).
    return np.empty(size, dtype=np.uint8)


def _header_text(header: dict[str, Any]) -> bytes:
    """The header as JSON, space-padded so that the payload after it is aligned."""
    text = json.dumps(header, separators=(",", ":")).encode()
    return text + b" " * (-(_PREFIX.size + len(text)) % _ALIGN)


def decode_snapshot(data: bytes | bytearray | memoryview) -> FieldSnapshot:
    """Read a snapshot written by :func:`encode_snapshot` (format version 2, or 1);
    raises :class:`SnapshotError` on any corruption or invalid value.

    The field's arrays are private float64 copies: ``data`` may be reused afterwards.
    """
    buf = memoryview(data).cast("B")
    if len(buf) < _MAGIC_VERSION.size:
        raise SnapshotError(f"snapshot truncated: {len(buf)} bytes, not even a header")
    magic, version = _MAGIC_VERSION.unpack_from(buf)
    if magic != MAGIC:
        raise SnapshotError(f"not a field snapshot (magic {bytes(magic)!r})")
    if version not in READABLE_VERSIONS:
        raise SnapshotError(
            f"snapshot format version {version}, this airpath reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    prefix = _PREFIX_V1 if version == 1 else _PREFIX
    if len(buf) < prefix.size:
        raise SnapshotError(f"snapshot truncated: {len(buf)} bytes, not even a header")
    _, _, header_len, *header_crc = prefix.unpack_from(buf)
    start = prefix.size + header_len
    if len(buf) < start:
        raise SnapshotError(f"snapshot truncated in its header ({len(buf)} of {start} bytes)")
    text = buf[prefix.size : start]
    if header_crc and zlib.crc32(text) != header_crc[0]:
        raise SnapshotError("snapshot header fails its CRC32 check (corrupt)")
    try:
        h = json.loads(bytes(text))
        return _from_header(h, buf[start:], version)
    except SnapshotError:
        raise
    except FieldError as exc:
        raise SnapshotError(f"snapshot holds an invalid field: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"corrupt snapshot header: {type(exc).__name__}: {exc}") from exc


def _from_header(h: dict[str, Any], payload: memoryview, version: int) -> FieldSnapshot:
    if h["dtype"] != _DTYPE.str:
        raise SnapshotError(f"snapshot dtype {h['dtype']!r}, want {_DTYPE.str!r}")
    if len(payload) != h["payload_bytes"]:
        raise SnapshotError(
            f"snapshot payload is {len(payload)} bytes, header says {h['payload_bytes']}"
        )
    if version == 1 and zlib.crc32(payload) != h["payload_crc32"]:
        raise SnapshotError("snapshot payload fails its CRC32 check (corrupt)")
    n_edges = int(h["n_edges"])
    conc: dict[str, npt.NDArray[np.float32]] = {}
    unc: dict[str, npt.NDArray[np.float32]] = {}
    covered = 0  # from version 2 the arrays tile the payload: every byte is checked
    for e in h["arrays"]:
        shape = tuple(int(x) for x in e["shape"])
        count, offset = math.prod(shape), int(e["offset"])
        end = offset + count * _DTYPE.itemsize
        if min(shape, default=-1) < 0 or offset < 0 or end > len(payload):
            raise SnapshotError(f"snapshot array {e['name']} lies outside the payload")
        target = {"concentration": conc, "uncertainty": unc}[e["kind"]]
        if version > 1:
            if offset != covered:
                raise SnapshotError(f"snapshot array {e['name']} is not where the last one ends")
            covered = end
            if zlib.crc32(payload[offset:end]) != int(e["crc32"], 16):
                raise SnapshotError(
                    f"snapshot array {e['kind']} of {e['name']} fails its CRC32 check (corrupt)"
                )
        target[str(e["name"])] = np.frombuffer(payload, _DTYPE, count, offset).reshape(shape)
    if version > 1 and covered != len(payload):
        raise SnapshotError(f"snapshot payload has {len(payload) - covered} bytes in no array")
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
