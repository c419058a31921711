"""The streaming job's ``sensors.json``: the latest reading of every sensor.

The job replaces the file atomically after each batch; this reader re-reads it only when
its identity (inode, size, modification time) changes, so polling clients cost a
``stat`` each. A missing file means no sensor has reported yet.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airpath.api.models import SensorsDocument
from airpath.errors import SourceError

EMPTY: dict[str, Any] = {"updated_at": None, "sensors": []}


class SensorsFile:
    """Reads and checks ``sensors.json``; raises :class:`SourceError` for a corrupt one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    def read(self) -> dict[str, Any]:
        """The document as JSON-ready data (times as ISO 8601 strings)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return EMPTY
        except OSError as exc:
            raise SourceError(f"cannot read the sensors document: {exc}") from exc
        ident = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._cached is not None and self._cached[0] == ident:
                return self._cached[1]
        try:
            raw = json.loads(self.path.read_bytes())
            doc = SensorsDocument.model_validate(raw).model_dump(mode="json")
        except FileNotFoundError:
            return EMPTY  # replaced between stat and read: the next request sees it
        except (OSError, ValueError, ValidationError) as exc:
            raise SourceError(f"the sensors document is unreadable: {exc}") from exc
        with self._lock:
            self._cached = (ident, doc)
        return doc
