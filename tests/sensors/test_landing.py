"""The landing directory: atomic, durable, uniquely named files; raw lines kept; sweeps."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airpath.air.parsers import parse_jsonl
from airpath.air.readings import RejectReason
from airpath.air.schema import Pollutant, Reading, SensorKind
from airpath.errors import InputError, PipelineConfigError
from airpath.sensors.landing import LandingWriter, MemoryLanding, payload_lines, raw_line

START = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
VALID = (
    '{"sensor_id": "s1", "sensor_kind": "low_cost", "lat": 60.17, "lon": 24.94,'
    ' "time": "2026-05-01T08:00:00Z", "pollutant": "no2", "value": 21.5, "unit": "ug/m3"}'
)


def visible(directory: Path) -> list[Path]:
    """The files Spark's file source would read: names not starting with '.' or '_'."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith((".", "_")))


def readings(n: int) -> list[Reading]:
    return [
        Reading(f"s{i % 7}", SensorKind.LOW_COST, 60.17, 24.94,
                START + dt.timedelta(seconds=i), Pollutant.PM25, 3.0 + i)
        for i in range(n)
    ]  # fmt: skip


def test_lines_land_as_given_in_one_file(tmp_path: Path) -> None:
    writer = LandingWriter(tmp_path / "landing")  # created on demand
    path = writer.write_lines([VALID, b'{"bytes": true}\n', "not json at all", "{oops"])
    assert visible(tmp_path / "landing") == [path]
    assert path.read_text() == VALID + '\n{"bytes": true}\nnot json at all\n{oops\n'
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    good, bad = parse_jsonl(path)
    assert len(good) == 1
    assert [(r.reason, r.payload) for r in bad] == [
        (RejectReason.MALFORMED, '{"bytes": true}'),  # JSON, but not a reading
        (RejectReason.MALFORMED, "not json at all"),
        (RejectReason.MALFORMED, "{oops"),
    ]


def test_write_readings_round_trips(tmp_path: Path) -> None:
    batch = readings(20)
    good, bad = parse_jsonl(LandingWriter(tmp_path).write_readings(batch))
    assert (good, bad) == (batch, [])


@pytest.mark.parametrize(
    "lines",
    [[], ["a\nb"], ["a\rb"], ["a\u2028b"], [b"\xff\xfe"], [VALID, "two\n\n"]],
    ids=["empty", "newline", "cr", "u2028", "not-utf8", "blank-tail"],
)
def test_lines_that_would_break_the_file_are_refused(
    tmp_path: Path, lines: list[str | bytes]
) -> None:
    with pytest.raises(InputError):
        LandingWriter(tmp_path).write_lines(lines)
    assert list(tmp_path.iterdir()) == []  # nothing landed, no temporary left


def test_a_failed_rename_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(*_args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        LandingWriter(tmp_path).write_lines([VALID])
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_are_named_errors(tmp_path: Path) -> None:
    for prefix in ("", ".hidden", "_hidden", "a/b"):
        with pytest.raises(PipelineConfigError):
            LandingWriter(tmp_path, prefix=prefix)
    (tmp_path / "file").write_text("")
    with pytest.raises(PipelineConfigError):
        LandingWriter(tmp_path / "file" / "landing")


def test_names_are_unique_and_sort_in_write_order(tmp_path: Path) -> None:
    a, b = LandingWriter(tmp_path), LandingWriter(tmp_path)  # two writers, one process
    paths = [w.write_lines([str(i)]) for i in range(50) for w in (a, b)]
    assert len(set(paths)) == 100
    assert sorted(paths) == paths  # the time stamp alone orders them
    later = LandingWriter(tmp_path).write_lines(["restart"])  # a writer started later
    assert later == max(visible(tmp_path))
    match = re.fullmatch(r"readings-\d{8}T\d{6}\.\d{6}Z-(\d{7})-\d{6}\.jsonl", later.name)
    assert match is not None
    assert int(match.group(1)) == os.getpid()


_WRITER = """
import sys
from airpath.sensors.landing import LandingWriter
w = LandingWriter(sys.argv[1])
for i in range(int(sys.argv[3])):
    w.write_lines([f"{sys.argv[2]} {i}"])
"""


def test_concurrent_processes_never_collide(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), tag, "60"])
        for tag in ("p1", "p2")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    first = visible(tmp_path)
    assert len(first) == 120
    subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), "p3", "5"], check=True)
    files = visible(tmp_path)
    assert len(files) == 125
    assert files[:120] == first  # the restarted writer's files sort after the others
    for tag in ("p1", "p2", "p3"):  # and each process's files in the order written
        numbers = [int(t.split()[1]) for p in files if (t := p.read_text()).startswith(tag)]
        assert numbers == sorted(numbers)


def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    writer = LandingWriter(tmp_path)
    n_files = 60
    done = threading.Event()
    seen: dict[str, int] = {}
    partial: list[str] = []

    deadline = time.monotonic() + 30

    def read() -> None:
        while time.monotonic() < deadline:
            for path in visible(tmp_path):
                if path.name not in seen:
                    lines = path.read_text().splitlines()
                    # every file declares its own length in its first line
                    if not lines or len(lines) != int(lines[0]):
                        partial.append(path.name)
                    seen[path.name] = len(lines)
            if done.is_set() and len(seen) >= n_files:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for i in range(n_files):
        n = 500 + 700 * (i % 5)  # up to ~300 kB
        writer.write_lines([str(n)] + [VALID] * (n - 1))
    done.set()
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert partial == []
    assert len(seen) == n_files


def test_sweep_removes_only_abandoned_temporaries(tmp_path: Path) -> None:
    writer = LandingWriter(tmp_path)
    landed = writer.write_lines([VALID])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    crashed = tmp_path / f".readings-20260501T080000.000000Z-{dead_pid:07d}-000001.jsonl.tmp"
    live = tmp_path / f".readings-20260501T080000.000001Z-{os.getpid():07d}-000002.jsonl.tmp"
    old = tmp_path / f".readings-20260501T080000.000002Z-{os.getppid():07d}-000003.jsonl.tmp"
    other = tmp_path / ".other-20260501T080000.000000Z-0000001-000001.jsonl.tmp"
    for path in (crashed, live, old, other):
        path.write_text('{"half": ')
    hour_ago_s = time.time() - 3600
    os.utime(old, (hour_ago_s, hour_ago_s))
    assert sorted(writer.sweep_temporaries()) == sorted([crashed, old])
    assert sorted(tmp_path.iterdir()) == sorted([landed, live, other])
    assert writer.sweep_temporaries(older_than_s=0) == [live]


def test_memory_landing_keeps_the_contract(tmp_path: Path) -> None:
    fake, real = MemoryLanding(), LandingWriter(tmp_path)
    batch: list[str | bytes] = [VALID, b"raw\n"]
    fake.write_lines(batch)
    assert fake.lines == real.write_lines(batch).read_text().splitlines()
    for landing in (fake, real):
        with pytest.raises(InputError):
            landing.write_lines(["a\nb"])
    fake.failing = True
    with pytest.raises(OSError, match="told to fail"):
        fake.write_lines(batch)
    assert len(fake.files) == 1


def test_payload_forms_become_lines_and_nothing_is_dropped() -> None:
    pretty = json.dumps(json.loads(VALID), indent=2).encode()
    cases: dict[bytes, int] = {
        VALID.encode(): 1,
        pretty: 1,
        f"[{VALID}, {VALID}]".encode(): 2,
        f"{VALID}\r\n\r\n{VALID}\n".encode(): 2,
        b"[]": 0,
    }
    for payload, n in cases.items():
        lines = payload_lines(payload, source="t")
        assert len(lines) == n, payload
        assert parse_jsonl(lines)[1] == []

    odd = {
        b"\xff\xfe not utf-8": 1,
        b"": 1,
        b"  \n ": 1,
        b"{oops": 1,
        b"hello\nworld": 2,
        f"{VALID}\n{{oops".encode(): 2,
        f"[{VALID}, 42]".encode(): 2,
        b"[" * 100_000: 1,  # too deep for the JSON parser
    }
    for payload, n in odd.items():
        lines = payload_lines(payload, source="t")
        assert len(lines) == n, payload
        assert all(line.isascii() and "\n" not in line for line in lines)
        good, bad = parse_jsonl(lines)
        assert len(good) + len(bad) == n
        assert all(r.reason is RejectReason.MALFORMED for r in bad)
        assert len(bad) >= 1


def test_raw_line_envelope_keeps_the_payload() -> None:
    text = 'line one\nline "two" \u2028 µ'
    record = json.loads(raw_line(text, source="http", error="bad JSON"))
    assert record == {"_raw": text, "_error": "bad JSON", "_source": "http"}
    binary = bytes(range(256))
    record = json.loads(raw_line(binary, source="mqtt:x", error="not UTF-8"))
    assert base64.b64decode(record["_raw_base64"]) == binary
    good, bad = parse_jsonl([raw_line(text, source="http", error="e")])
    assert good == []
    assert json.loads(bad[0].payload)["_raw"] == text
