"""Files that survive a crash: written in full or not at all, and still there after one.

Readers (Spark's file source, routers polling a store, a restarted job) must never see half
a file, and whatever was acknowledged must be on disk. Hence: write a temporary name in
the same directory, flush and ``fsync`` it, ``os.replace`` it over the final name (atomic
on POSIX), then ``fsync`` the directory so the rename itself is durable (POSIX leaves that
to the directory's own sync; see ``fsync(2)``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (creations, renames) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, and so that
    after a crash the rename is on disk before anything written later."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{time.monotonic_ns()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
