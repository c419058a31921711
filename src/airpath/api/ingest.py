"""Readings received over HTTP: validate each one, land the good ones durably, keep the
rest as dead letters. Plain functions, no HTTP: the handler in :mod:`.readings` calls
them on a worker thread.

Every reading of a request ends in exactly one place: accepted ones in one landing file
(fsynced and renamed into place before :func:`land` returns, so the ``202 Accepted``
that follows is a promise kept across a crash), rejected ones in the dead-letter store
and in the answer, each with its position in the request and the reason. The streaming
job validates again (it also knows about replays across requests and late data); here
the same rules give the sender an answer at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from airpath.air.deadletters import DeadLetterWriter
from airpath.air.parsers import parse_jsonl
from airpath.air.readings import Rejected, validate
from airpath.air.rules import Area, RecentKeys
from airpath.sensors.landing import Landing

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """The verdict on one request's readings, in request order."""

    received: int
    accepted: list[str] = field(default_factory=list)  # landable lines
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)  # (index, why)

    @property
    def reasons(self) -> dict[str, int]:
        return dict(Counter(r.reason.value for _, r in self.rejected))


def check_batch(lines: Sequence[str], *, now: dt.datetime, area: Area, source: str) -> Batch:
    """Validate every line (one reading each) with the streaming job's rules.

    Duplicates are looked for within the request only: a client retrying a request
    whose answer it lost must get its readings accepted again (the streaming job drops
    the copies), not told they are duplicates.
    """
    batch = Batch(received=len(lines))
    seen = RecentKeys(max(len(lines), 1))
    for index, line in enumerate(lines):
        where = f"{source}:{index}"
        readings, rejected = parse_jsonl([line], source=where)
        if rejected:  # its source names the line within [line]: name the request's index
            batch.rejected.append((index, dataclasses.replace(rejected[0], source=where)))
            continue
        result = validate(readings, now=now, area=area, seen=seen, source=where)
        if result.valid:
            batch.accepted.append(line)
        else:
            batch.rejected.append((index, result.rejected[0]))
    return batch


def land(batch: Batch, landing: Landing, dead_letters: DeadLetterWriter | None) -> bool:
    """Land the accepted lines (durable on return; an ``OSError`` means nothing was
    accepted), then the rejected ones as dead letters. Returns whether the dead letters
    were stored: a failure there is logged, not raised, because the rejections are in
    the answer as well and the accepted readings must not be refused for it."""
    if batch.accepted:
        landing.write_lines(batch.accepted)
    if not batch.rejected:
        return True
    if dead_letters is None:
        return False
    try:
        dead_letters.write([r for _, r in batch.rejected])
    except OSError:
        log.exception("could not store %d dead letters", len(batch.rejected))
        return False
    return True
