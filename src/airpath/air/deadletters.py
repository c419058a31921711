"""The dead-letter store: every rejected reading, kept as Parquet for later inspection.

Each :meth:`DeadLetterWriter.write` call writes one new file, first under a temporary
name and then renamed into place (``os.replace`` is atomic on POSIX), so readers never
see a partial file and nothing written is ever overwritten.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airpath.air.readings import Rejected
from airpath.errors import SourceError

__all__ = ["DEAD_LETTER_SCHEMA", "DeadLetterWriter", "read_dead_letters"]

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("received_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # a RejectReason value
        pa.field("message", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),  # raw line or record as JSON
        pa.field("source", pa.string(), nullable=False),
    ]
)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DeadLetterWriter:
    """Appends rejected readings under ``directory``, one Parquet file per call."""

    def __init__(
        self, directory: str | os.PathLike[str], *, clock: Callable[[], dt.datetime] = _utc_now
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clock = clock

    def write(
        self, rejected: Sequence[Rejected], *, received_at: dt.datetime | None = None
    ) -> Path | None:
        """Store ``rejected``; returns the new file, or None when there was nothing."""
        at = received_at or self._clock()
        rows = [
            {
                "received_at": at,
                "reason": r.reason.value,
                "message": r.message,
                "payload": r.payload,
                "source": r.source,
            }
            for r in rejected
        ]
        return self._write(pa.Table.from_pylist(rows, schema=DEAD_LETTER_SCHEMA), at)

    def write_frame(
        self, rejected: pd.DataFrame, *, source: str, received_at: dt.datetime | None = None
    ) -> Path | None:
        """Store the ``rejected`` frame of :func:`~airpath.air.frames.validate_frame`."""
        at = received_at or self._clock()
        n = len(rejected)
        table = pa.table(
            {
                "received_at": pa.array([at] * n, DEAD_LETTER_SCHEMA.field("received_at").type),
                "reason": pa.array(rejected["reason"].astype(str).tolist(), pa.string()),
                "message": pa.array(rejected["message"].astype(str).tolist(), pa.string()),
                "payload": pa.array(rejected["payload"].astype(str).tolist(), pa.string()),
                "source": pa.array([source] * n, pa.string()),
            },
            schema=DEAD_LETTER_SCHEMA,
        )
        return self._write(table, at)

    def _write(self, table: pa.Table, at: dt.datetime) -> Path | None:
        if table.num_rows == 0:
            return None
        stamp = at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        # Write order breaks ties between files stamped with the same receipt time.
        order = f"{time.time_ns():020d}"
        final = self.directory / f"dead-{stamp}-{order}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = final.with_name(f".{final.name}.tmp")
        try:
            with tmp.open("wb") as out:
                pq.write_table(table, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final


def read_dead_letters(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """All dead letters under ``directory``, oldest file first (empty frame if none)."""
    files = sorted(Path(directory).glob("dead-*.parquet"))
    if not files:
        return DEAD_LETTER_SCHEMA.empty_table().to_pandas()
    try:
        tables = [pq.read_table(f, schema=DEAD_LETTER_SCHEMA) for f in files]
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceError(f"corrupt dead-letter file in {directory}: {exc}") from exc
    return pa.concat_tables(tables).to_pandas()
