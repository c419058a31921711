"""LocalFieldStore on disk: layout, atomic swaps under concurrent reads, crash leftovers."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from airpath.errors import FieldStoreError, SnapshotError
from airpath.serving import FieldSnapshot, LocalFieldStore


def test_layout_on_disk(tmp_path: Path, snap: Callable[..., FieldSnapshot]) -> None:
    store = LocalFieldStore(tmp_path, keep=2)
    for v in ("a", "b", "c"):
        store.publish(snap(v))
    files = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert files == ["000000000002-b.apfs", "000000000003-c.apfs"]
    assert (tmp_path / "CURRENT").read_text() == "000000000003-c.apfs\n"
    assert json.loads((tmp_path / "STORE.json").read_text()) == {
        "format": 1,
        "network_key": "net-a",
    }
    assert not list(tmp_path.rglob(".tmp-*"))


def test_network_key_survives_a_restart(tmp_path: Path, snap: Callable[..., FieldSnapshot]) -> None:
    LocalFieldStore(tmp_path).publish(snap("v1", key="net-a"))
    again = LocalFieldStore(tmp_path)
    assert again.network_key == "net-a"
    assert again.latest().version == "v1"
    with pytest.raises(SnapshotError, match="net-a"):
        again.publish(snap("v2", key="net-b"))
    again.publish(snap("v2", key="net-a"))
    assert again.versions() == ["v1", "v2"]


def test_leftovers_of_a_crashed_writer_are_ignored_then_removed(
    tmp_path: Path, snap: Callable[..., FieldSnapshot]
) -> None:
    store = LocalFieldStore(tmp_path)
    store.publish(snap("v1"))
    half = tmp_path / "snapshots" / ".tmp-000000000002-v2.apfs-1-1"
    half.write_bytes(b"APFSNAP\0 half a snapshot")
    (tmp_path / ".tmp-CURRENT-1-1").write_text("000000000002-v2.apfs\n")
    assert store.versions() == ["v1"]
    assert store.latest().version == "v1"
    store.publish(snap("v3"))
    assert not half.exists()
    assert not (tmp_path / ".tmp-CURRENT-1-1").exists()
    assert store.versions() == ["v1", "v3"]


def test_corrupt_files_raise_named_errors(
    tmp_path: Path, snap: Callable[..., FieldSnapshot]
) -> None:
    store = LocalFieldStore(tmp_path)
    store.publish(snap("v1"))
    path = tmp_path / "snapshots" / "000000000001-v1.apfs"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(SnapshotError, match="payload"):
        store.latest()
    (tmp_path / "CURRENT").write_text("../../etc/passwd\n")
    with pytest.raises(FieldStoreError, match="names no snapshot"):
        store.latest_version()
    (tmp_path / "STORE.json").write_text("{")
    with pytest.raises(FieldStoreError, match=r"STORE\.json"):
        store.publish(snap("v2"))


def test_readers_never_see_a_partial_snapshot_or_go_backwards(
    tmp_path: Path, snap: Callable[..., FieldSnapshot]
) -> None:
    writer = LocalFieldStore(tmp_path, keep=2)  # tight keep: readers race pruning often
    reader = LocalFieldStore(tmp_path, keep=2)
    writer.publish(snap("v000", n_edges=20_000, level=0.0))
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                s = reader.latest()  # decodes: CRC and field validation on every read
                seen.append(int(s.version[1:]))
                assert s.field.concentration_ugm3["no2"][0, 0] == int(s.version[1:])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for k in range(1, 51):
            writer.publish(snap(f"v{k:03d}", n_edges=20_000, level=float(k)))
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    assert len(seen) > 10
    assert all(a <= b for a, b in itertools.pairwise(seen))
    assert reader.latest().version == "v050"


def test_a_reader_gives_up_when_current_points_nowhere(
    tmp_path: Path, snap: Callable[..., FieldSnapshot]
) -> None:
    store = LocalFieldStore(tmp_path)
    store.publish(snap("v1"))
    (tmp_path / "CURRENT").write_text("000000000009-gone.apfs\n")
    assert store.latest_version() == "gone"
    with pytest.raises(FieldStoreError, match="kept moving"):
        store.latest()


def test_version_1_files_are_still_read(
    tmp_path: Path, snap: Callable[..., FieldSnapshot], encode_v1: Callable[..., bytes]
) -> None:
    """A store written by an airpath of snapshot format 1 keeps serving after an upgrade."""
    store = LocalFieldStore(tmp_path)
    store.publish(snap("v1"))
    old = snap("v2", level=42.0)
    (tmp_path / "snapshots" / "000000000002-v2.apfs").write_bytes(encode_v1(old))
    (tmp_path / "CURRENT").write_text("000000000002-v2.apfs\n")
    got = store.latest()
    assert got.version == "v2"
    assert got.field.concentration_ugm3["no2"][0, 0] == 42.0
    store.publish(snap("v3"))  # and new snapshots go next to it
    assert store.versions() == ["v1", "v2", "v3"]
    assert store.get("v2").model_version == old.model_version


def test_a_flipped_byte_in_a_stored_file_is_a_snapshot_error(
    tmp_path: Path, snap: Callable[..., FieldSnapshot]
) -> None:
    store = LocalFieldStore(tmp_path)
    store.publish(snap("v1", n_edges=5000))
    path = tmp_path / "snapshots" / "000000000001-v1.apfs"
    good = path.read_bytes()
    for at in (10, 100, len(good) // 2, len(good) - 1):
        bad = bytearray(good)
        bad[at] ^= 0x04
        path.write_bytes(bytes(bad))
        with pytest.raises(SnapshotError):
            store.latest()
    path.write_bytes(good)
    assert store.latest().version == "v1"
