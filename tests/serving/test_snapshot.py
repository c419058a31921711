"""The snapshot format: exact round trips, and one-line SnapshotErrors for every corruption.

Format version 2 is what is written; version 1 snapshots (written by airpath before the
per-array and header CRCs) are still read: the ``encode_v1`` fixture writes them the way
that version did.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from airpath import PollutionField
from airpath.errors import SnapshotError
from airpath.serving import FieldSnapshot, decode_snapshot, encode_snapshot, network_key
from airpath.serving.snapshot import FORMAT_VERSION, MAGIC, encode_snapshot_buffer

PREFIX = struct.Struct("<8sIII")  # magic, version, header length, header CRC32

T0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)


def _small(**kw: object) -> FieldSnapshot:
    fld = PollutionField.create(
        "v1",
        T0,
        {"no2": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]},
        n_edges=3,
        horizons_min=(0, 30),
        uncertainty_ugm3={"no2": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]},
    )
    args = {
        "field": fld,
        "network_key": "k1",
        "model_version": "m1",
        "newest_event_time": T0 - dt.timedelta(seconds=40),
        "published_at": T0,
    }
    args.update(kw)
    return FieldSnapshot(**args)  # type: ignore[arg-type]


def _assert_same(a: FieldSnapshot, b: FieldSnapshot) -> None:
    assert (b.version, b.network_key, b.model_version) == (
        a.version,
        a.network_key,
        a.model_version,
    )
    assert (b.newest_event_time, b.published_at) == (a.newest_event_time, a.published_at)
    assert (b.batch_id, dict(b.stats)) == (a.batch_id, dict(a.stats))
    assert b.field.valid_at == a.field.valid_at
    assert b.field.horizons_min == a.field.horizons_min
    for src, dst in (
        (a.field.concentration_ugm3, b.field.concentration_ugm3),
        (a.field.uncertainty_ugm3, b.field.uncertainty_ugm3),
    ):
        assert list(dst) == list(src)
        for p in src:
            assert dst[p].dtype == np.float64
            np.testing.assert_allclose(dst[p], src[p], rtol=2**-23, atol=1e-30)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 60)),
    pollutants=st.lists(
        st.sampled_from(["no2", "pm10", "pm25", "o3"]), min_size=1, max_size=4, unique=True
    ),
    with_unc=st.booleans(),
    newest=st.one_of(st.none(), st.integers(0, 10**6)),
    batch=st.one_of(st.none(), st.integers(0, 2**40)),
)
def test_round_trip_keeps_every_value_within_float32(
    data: st.DataObject,
    shape: tuple[int, int],
    pollutants: list[str],
    with_unc: bool,
    newest: int | None,
    batch: int | None,
) -> None:
    n_h, n_edges = shape
    el = st.floats(0.0, 1e6, allow_nan=False, allow_subnormal=False)
    conc = {p: data.draw(hnp.arrays(np.float64, shape, elements=el)) for p in pollutants}
    unc = {p: data.draw(hnp.arrays(np.float64, shape, elements=el)) for p in pollutants[:1]}
    fld = PollutionField.create(
        "v-hyp",
        T0,
        conc,
        n_edges=n_edges,
        horizons_min=tuple(15.0 * k for k in range(n_h)),
        uncertainty_ugm3=unc if with_unc else None,
    )
    s = FieldSnapshot(
        fld,
        "key",
        "model",
        None if newest is None else T0 - dt.timedelta(seconds=newest),
        T0,
        batch_id=batch,
        stats={"readings": 3.0, "sensors": 2.5},
    )
    _assert_same(s, decode_snapshot(encode_snapshot(s)))


def test_memoryview_input_and_payload_alignment() -> None:
    s = _small(batch_id=3, stats={"readings": 9})
    data = encode_snapshot(s)
    assert data[:8] == MAGIC
    _, version, header_len, _ = PREFIX.unpack_from(data)
    assert version == FORMAT_VERSION == 2
    assert (PREFIX.size + header_len) % 64 == 0
    buf = encode_snapshot_buffer(s)
    assert (buf.format, buf.ndim) == ("B", 1)
    assert buf.tobytes() == data
    _assert_same(s, decode_snapshot(buf))
    _assert_same(s, decode_snapshot(memoryview(data)))
    _assert_same(s, decode_snapshot(memoryview(bytearray(data))))
    _assert_same(s, decode_snapshot(bytearray(data)))


def test_decoded_arrays_are_private_float64_copies() -> None:
    s = _small()
    buf = bytearray(encode_snapshot(s))
    got = decode_snapshot(buf)
    buf[-40:] = bytes(40)  # the reader may reuse its buffer
    _assert_same(s, got)
    arr = got.field.concentration_ugm3["no2"]
    assert arr.dtype == np.float64
    assert not arr.flags.writeable


def test_every_truncation_is_a_snapshot_error() -> None:
    data = encode_snapshot(_small())
    for cut in range(len(data)):
        with pytest.raises(SnapshotError):
            decode_snapshot(data[:cut])
    with pytest.raises(SnapshotError, match="payload"):
        decode_snapshot(data + b"\0")  # trailing bytes


def test_a_flipped_payload_bit_fails_the_crc() -> None:
    data = bytearray(encode_snapshot(_small()))
    data[-5] ^= 0x10
    with pytest.raises(SnapshotError, match="CRC32"):
        decode_snapshot(bytes(data))


def test_any_flipped_bit_anywhere_is_a_snapshot_error() -> None:
    """Prefix, header (padding too) and payload: no single bit goes unnoticed."""
    data = encode_snapshot(_small(batch_id=3, stats={"readings": 9}))
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(SnapshotError) as info:
                decode_snapshot(bytes(bad))
            assert "\n" not in str(info.value)


def test_a_corrupt_header_fails_its_crc() -> None:
    data = bytearray(encode_snapshot(_small(model_version="lur-v3")))
    at = bytes(data).index(b"lur-v3")
    data[at + 5] = ord("4")  # still valid JSON, and a plausible model version
    with pytest.raises(SnapshotError, match="header fails its CRC32"):
        decode_snapshot(bytes(data))


def test_wrong_magic_and_version() -> None:
    data = encode_snapshot(_small())
    with pytest.raises(SnapshotError, match="not a field snapshot"):
        decode_snapshot(b"PK\x03\x04" + data[4:])
    with pytest.raises(SnapshotError, match="format version 9"):
        decode_snapshot(data[:8] + struct.pack("<I", 9) + data[12:])


def _parts(data: bytes) -> tuple[dict[str, Any], bytearray]:
    _, _, n, _ = PREFIX.unpack_from(data)
    return json.loads(data[PREFIX.size : PREFIX.size + n]), bytearray(data[PREFIX.size + n :])


def _pack(header: dict[str, Any] | bytes, payload: bytes) -> bytes:
    """A version-2 snapshot of this header (a dict, or raw text) and payload, with a valid
    header CRC; the array CRCs are the header's."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return PREFIX.pack(MAGIC, 2, len(text), zlib.crc32(text)) + text + payload


def _rewrite(data: bytes, header_edit: dict[Any, Any], payload_edit: dict[int, float]) -> bytes:
    """Set payload float32 values and header keys, keeping every CRC valid (the array
    CRCs are taken after the edits, unless an edit sets one). A header value of None
    deletes the key; ``("arrays", 0, "kind")`` paths nest."""
    header, payload = _parts(data)
    for index, value in payload_edit.items():
        payload[4 * index : 4 * index + 4] = struct.pack("<f", value)
    for path, value in header_edit.items():
        *outer, last = path if isinstance(path, tuple) else (path,)
        node = header
        for part in outer:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    for k, e in enumerate(header["arrays"]):
        if ("arrays", k, "crc32") not in header_edit:
            start = e["offset"]
            end = start + 4 * e["shape"][0] * e["shape"][1]
            e["crc32"] = f"{zlib.crc32(payload[start:end]):08x}"
    return _pack(header, bytes(payload))


def test_rewrite_without_edits_round_trips() -> None:
    s = _small()
    _assert_same(s, decode_snapshot(_rewrite(encode_snapshot(s), {}, {})))


@pytest.mark.parametrize(
    ("header_edit", "payload_edit", "message"),
    [
        ({}, {0: -1.0}, "negative"),
        ({}, {1: float("nan")}, "NaN"),
        ({"version": None}, {}, "corrupt snapshot header"),
        ({("arrays", 0, "offset"): 10**6}, {}, "outside the payload"),
        ({("arrays", 0, "shape"): [2, -3]}, {}, "outside the payload"),
        ({("arrays", 0, "kind"): "mystery"}, {}, "corrupt snapshot header"),
        ({("arrays", 0, "crc32"): "0000000g"}, {}, "corrupt snapshot header"),
        ({("arrays", 0, "crc32"): 12345}, {}, "corrupt snapshot header"),
        ({("arrays", 1, "crc32"): "00000000"}, {}, "uncertainty of no2 fails its CRC32"),
        ({("arrays", 1, "offset"): 0}, {}, "not where the last one ends"),
        ({("arrays", 1, "shape"): [1, 3]}, {}, "bytes in no array"),
        ({"dtype": "<f8"}, {}, "dtype"),
        ({"horizons_min": [5, 10]}, {}, "horizons must start at 0"),
        ({"published_at": "yesterday"}, {}, "corrupt snapshot header"),
    ],
)
def test_bad_headers_and_values_are_snapshot_errors(
    header_edit: dict[Any, Any], payload_edit: dict[int, float], message: str
) -> None:
    data = _rewrite(encode_snapshot(_small()), header_edit, payload_edit)
    with pytest.raises(SnapshotError, match=message) as info:
        decode_snapshot(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -1.0, -1e-30])
@pytest.mark.parametrize("index", range(12))  # every value of both arrays of _small()
def test_a_bad_value_in_any_array_is_refused(value: float, index: int) -> None:
    data = _rewrite(encode_snapshot(_small()), {}, {index: value})
    message = "negative" if value > float("-inf") and value < 0 else "NaN or infinite"
    with pytest.raises(SnapshotError, match=f"invalid field: .*1 {message}"):
        decode_snapshot(data)


def test_unparseable_header_is_a_snapshot_error() -> None:
    header, payload = _parts(encode_snapshot(_small()))
    text = json.dumps(header).encode()
    with pytest.raises(SnapshotError, match="corrupt snapshot header"):
        decode_snapshot(_pack(b"#" + text[1:], bytes(payload)))


# -- version 1 --------------------------------------------------------------------------


def test_version_1_snapshots_are_still_read(encode_v1: Callable[..., bytes]) -> None:
    s = _small(batch_id=3, stats={"readings": 9})
    old = encode_v1(s)
    assert old[8:12] == struct.pack("<I", 1)
    _assert_same(s, decode_snapshot(old))
    _assert_same(s, decode_snapshot(memoryview(old)))


def test_version_1_corruption_and_bad_values_are_still_refused(
    encode_v1: Callable[..., bytes],
) -> None:
    old = encode_v1(_small())
    for cut in range(len(old)):
        with pytest.raises(SnapshotError):
            decode_snapshot(old[:cut])
    flipped = bytearray(old)
    flipped[-5] ^= 0x10
    with pytest.raises(SnapshotError, match="payload fails its CRC32"):
        decode_snapshot(bytes(flipped))
    (n,) = struct.unpack_from("<I", old, 12)
    header = json.loads(old[16 : 16 + n])
    payload = bytearray(old[16 + n :])
    payload[0:4] = struct.pack("<f", float("nan"))
    header["payload_crc32"] = zlib.crc32(payload)
    text = json.dumps(header).encode()
    nan = struct.pack("<8sII", MAGIC, 1, len(text)) + text + bytes(payload)
    with pytest.raises(SnapshotError, match="NaN"):
        decode_snapshot(nan)


def test_snapshot_times_freshness_and_age() -> None:
    s = _small()
    assert s.version == "v1"
    assert s.freshness_s == 40.0
    assert s.age_s(T0 + dt.timedelta(seconds=20)) == 60.0
    no_data = _small(newest_event_time=None)
    assert no_data.freshness_s is None
    assert no_data.age_s(T0 + dt.timedelta(seconds=20)) == 20.0
    helsinki_time = dt.timezone(dt.timedelta(hours=3))
    local = _small(published_at=T0.astimezone(helsinki_time))
    assert local.published_at.tzinfo == dt.UTC
    assert local.published_at == T0
    with pytest.raises(SnapshotError, match="timezone-aware"):
        _small(published_at=dt.datetime(2026, 5, 1, 8, 0))


def test_values_beyond_float32_are_refused_at_encode() -> None:
    huge = PollutionField.create("v", T0, {"no2": [1e39, 1.0]}, n_edges=2)
    with pytest.raises(SnapshotError, match="float32"):
        encode_snapshot(_small(field=huge))


def test_network_key_is_stable_and_tells_builds_apart(helsinki) -> None:
    key = network_key(helsinki)
    assert key == network_key(helsinki)
    assert len(key) == 16
    other = type(helsinki)(
        path=helsinki.path,
        manifest={**helsinki.manifest, "built_at": "2020-01-01T00:00:00+00:00"},
        arrays=helsinki.arrays,
        names=helsinki.names,
    )
    assert network_key(other) != key
