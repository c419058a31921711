"""The landing directory: durable JSON-lines files that a streaming job reads once each.

Spark's file source lists a directory, skips names starting with ``.`` or ``_`` and reads
every other file exactly once, taking it to be complete. So :class:`LandingWriter` writes
each file under a hidden temporary name in the same directory, flushes and fsyncs it,
renames it into place with ``os.replace`` (atomic within one file system) and then fsyncs
the directory, so that the rename itself survives a power cut. When
:meth:`LandingWriter.write_lines` returns, the data is on disk under its final name; only
then may a source (an MQTT broker, an HTTP client) be told that its data was received.

File names are ``<prefix>-<UTC time to the µs>-<pid>-<seq><suffix>``, for example
``readings-20260501T080000.123456Z-0004242-000007.jsonl``. The time is kept strictly
increasing within a process (shared by every writer in it), so the names of one process
sort in the order written; the pid keeps concurrent writer processes apart, and the
time keeps a restarted writer apart from its earlier life.

A writer may be shared between threads (the HTTP ingest endpoint does); sources take
any :class:`Landing`, and tests can pass :class:`MemoryLanding` instead.

One line is one record. Lines are landed as given, valid JSON or not: validation
downstream rejects a bad line with a reason (a dead letter); nothing is dropped here.
:func:`payload_lines` turns a message body (one JSON object, a JSON array of them, or JSON
lines) into lines and wraps whatever cannot be read as JSON in a :func:`raw_line`
envelope.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from airpath.air.schema import Reading
from airpath.durable import fsync_dir
from airpath.errors import InputError, PipelineConfigError
from airpath.sensors.output import reading_to_json

__all__ = [
    "Landing",
    "LandingWriter",
    "MemoryLanding",
    "payload_lines",
    "raw_line",
]

# Every character str.splitlines() breaks on: parse_jsonl reads files with it, so a
# record holding one of these would reach validation as two broken records.
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


class Landing(Protocol):
    """Where landed lines go: one durable file per call (the seam the sources write to)."""

    def write_lines(self, lines: Sequence[str | bytes]) -> Path: ...


class _NameClock:
    """Process-wide source of file-name stamps: strictly increasing µs and a counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_us = 0
        self._seq = 0

    def next(self) -> tuple[int, int]:
        with self._lock:
            # max(): a clock stepped back by NTP must not reorder or reuse names.
            self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
            self._seq += 1
            return self._last_us, self._seq


_NAMES = _NameClock()


def _stamp(us: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    return t.strftime("%Y%m%dT%H%M%S.%fZ")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _as_text(line: str | bytes, index: int) -> str:
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"line {index} is not UTF-8 ({exc}); wrap it with raw_line") from None
    if line.endswith("\n"):
        line = line[:-2] if line.endswith("\r\n") else line[:-1]
    if _LINE_BREAKS.search(line):
        raise InputError(f"line {index} holds a line break; wrap it with raw_line")
    return line


class LandingWriter:
    """Writes JSON-lines files into ``directory`` durably and atomically (see module doc).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = LandingWriter(d).write_lines(['{"a": 1}', "not json"])
    ...     path.read_text()
    '{"a": 1}\\nnot json\\n'
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, prefix: str = "readings", suffix: str = ".jsonl"
    ) -> None:
        if not prefix or prefix[0] in "._" or "/" in prefix or "/" in suffix:
            raise PipelineConfigError(
                f"landing prefix must be non-empty, not start with '.' or '_' (Spark would "
                f"skip the files) and hold no '/': {prefix!r}, suffix {suffix!r}"
            )
        self.directory = Path(directory)
        self.prefix = prefix
        self.suffix = suffix
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PipelineConfigError(
                f"cannot create landing directory {directory}: {exc}"
            ) from exc
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PipelineConfigError(f"landing directory {directory} is not writable")

    def write_lines(self, lines: Sequence[str | bytes]) -> Path:
        """Land ``lines`` as one new file and return its final path, once it is durable.

        Each item is one record without its line terminator (one trailing ``\\n`` is
        tolerated). Raises :class:`InputError` for an empty batch, a line that is not
        UTF-8 or one holding a line break (use :func:`raw_line` for those); an
        ``OSError`` (disk full, ...) propagates, and then nothing was landed.
        """
        if not lines:
            raise InputError("nothing to land: no lines given")
        data = "".join(_as_text(line, i) + "\n" for i, line in enumerate(lines, 1)).encode()
        us, seq = _NAMES.next()
        name = f"{self.prefix}-{_stamp(us)}-{os.getpid():07d}-{seq:06d}{self.suffix}"
        final = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.directory)
        return final

    def write_readings(self, readings: Iterable[Reading]) -> Path:
        """Land readings in the simulator's JSON form (:func:`reading_to_json`)."""
        return self.write_lines(
            [json.dumps(reading_to_json(r), ensure_ascii=False) for r in readings]
        )

    def sweep_temporaries(self, *, older_than_s: float = 600.0) -> list[Path]:
        """Remove temporary files a crashed writer left behind; return what was removed.

        Such a file was never renamed, so nobody was told its data had landed: the
        source still holds (and will resend) it. A temporary is removed when the pid in
        its name is not a live process, or when it is older than ``older_than_s`` (a
        writer on another host or in another pid namespace). Removing a live writer's
        file by mistake loses nothing either: its ``os.replace`` then fails and it
        acknowledges nothing.
        """
        removed: list[Path] = []
        now_s = time.time()
        for tmp in self.directory.glob(f".{self.prefix}-*{self.suffix}.tmp"):
            match = re.search(r"-(\d+)-\d+" + re.escape(self.suffix) + r"\.tmp$", tmp.name)
            pid = int(match.group(1)) if match else 0
            try:
                old = now_s - tmp.stat().st_mtime > older_than_s
            except FileNotFoundError:
                continue  # renamed or removed meanwhile
            if old or pid <= 0 or (pid != os.getpid() and not _pid_alive(pid)):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        return removed


class MemoryLanding:
    """In-memory :class:`Landing` for tests: keeps each batch; can be told to fail."""

    def __init__(self) -> None:
        self.files: list[list[str]] = []
        self.failing = False  # when set, write_lines raises OSError as a full disk would

    def write_lines(self, lines: Sequence[str | bytes]) -> Path:
        if self.failing:
            raise OSError("memory landing told to fail")
        if not lines:
            raise InputError("nothing to land: no lines given")
        self.files.append([_as_text(line, i) for i, line in enumerate(lines, 1)])
        return Path(f"memory-{len(self.files):06d}.jsonl")

    @property
    def lines(self) -> list[str]:
        return [line for batch in self.files for line in batch]


def _dump(value: Any) -> str:
    # ASCII escapes keep U+2028 and friends out of the file (see _LINE_BREAKS).
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def raw_line(payload: str | bytes, *, source: str, error: str) -> str:
    """One landable line for a payload that is not JSON: an envelope around the raw data.

    ``{"_raw": text, "_error": why, "_source": where}``, or ``"_raw_base64"`` for bytes
    that are not UTF-8. The envelope is valid JSON on purpose: every JSON reader parses
    it the same way and then rejects it for lacking the reading's fields (``parse_jsonl``
    says MALFORMED, field 'sensor_id' missing), keeping the raw data in the dead letter.
    Landing the raw text instead would leave the verdict to the reader's leniency (Spark
    accepts single-quoted JSON that Python refuses) and could not hold line breaks.

    >>> raw_line(b"{oops", source="mqtt:t", error="bad JSON")
    '{"_raw":"{oops","_error":"bad JSON","_source":"mqtt:t"}'
    """
    record: dict[str, str] = {}
    if isinstance(payload, bytes):
        try:
            record["_raw"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            record["_raw_base64"] = base64.b64encode(payload).decode("ascii")
    else:
        record["_raw"] = payload
    record["_error"] = error
    record["_source"] = source
    return _dump(record)


def payload_lines(payload: bytes, *, source: str) -> list[str]:
    """The landable lines of one message body; never drops data.

    A JSON object gives one line, a JSON array one line per element (a ``[]`` gives
    none), JSON lines one line per non-blank line. Decoded values are written back as
    compact ASCII JSON. Whatever cannot be decoded (not UTF-8, not JSON, empty) becomes a
    :func:`raw_line` envelope, one per bad line, that validation will reject.

    >>> payload_lines(b'[{"a": 1}, {"a": 2}]', source="s")
    ['{"a":1}', '{"a":2}']
    >>> payload_lines(b'{"a": 1}\\nnope', source="s")
    ['{"a":1}', '{"_raw":"nope","_error":"bad JSON: Expecting value","_source":"s:2"}']
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [raw_line(payload, source=source, error=f"not UTF-8: {exc}")]
    if not text.strip():
        return [raw_line(payload, source=source, error="empty payload")]
    try:
        whole = json.loads(text)
        return [_dump(item) for item in whole] if isinstance(whole, list) else [_dump(whole)]
    except (ValueError, RecursionError):
        pass  # JSON lines, or not JSON at all
    lines: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            lines.append(_dump(json.loads(line)))
        except (ValueError, RecursionError) as exc:
            error = f"bad JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else repr(exc)
            lines.append(raw_line(line, source=f"{source}:{number}", error=error))
    return lines
