"""The estimators' input: a typed, columnar batch of validated, edge-matched observations.

Readings reach the estimators already validated, converted to µg/m³ and matched to a
network edge. An :class:`ObservationBatch` holds them as parallel NumPy arrays.

One optional column, ``bias_sd``, carries what a calibration knows of each row: the
standard deviation (log units, i.e. relative) of the error that remains in the value and
does not average out over the sensor's readings. ``None`` (or NaN in a row) means
unknown: the estimator applies its own default for the row's sensor kind.

Time is ``time_s``: float64 seconds since the Unix epoch (UTC). Floats keep the
estimators' arithmetic (exponential decays, ages) free of datetime conversions; the
constructors accept timezone-aware datetimes or ``datetime64`` columns and convert once.

>>> import datetime as dt
>>> t = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
>>> b = ObservationBatch.from_records([
...     {"edge_id": 3, "time": t, "pollutant": "no2", "value_ugm3": 31.5,
...      "sensor_id": "ref-1", "sensor_kind": "reference"},
... ])
>>> len(b), float(b.time_s[0]), str(b.pollutant[0])
(1, 1714550400.0, 'no2')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from airpath.air.schema import SensorKind
from airpath.errors import ObservationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]

COLUMNS = ("edge_id", "time", "pollutant", "value_ugm3", "sensor_id", "sensor_kind")
_KINDS = frozenset(k.value for k in SensorKind)


@dataclass(frozen=True)
class ObservationBatch:
    """Parallel arrays, one row per observation; build with a ``from_*`` constructor."""

    edge_id: IntArray
    time_s: FloatArray
    pollutant: StrArray
    value_ugm3: FloatArray
    sensor_id: StrArray
    sensor_kind: StrArray
    bias_sd: FloatArray | None = None  # lasting relative error per row; None: unknown

    def __post_init__(self) -> None:
        n = len(self.edge_id)
        names = ("time_s", "pollutant", "value_ugm3", "sensor_id", "sensor_kind")
        for name in (*names, "bias_sd") if self.bias_sd is not None else names:
            if len(getattr(self, name)) != n:
                raise ObservationError(
                    f"column {name!r} has {len(getattr(self, name))} rows, want {n}"
                )
        if n == 0:
            return
        if (self.edge_id < 0).any():
            raise ObservationError("negative edge_id")
        if not np.isfinite(self.time_s).all():
            raise ObservationError("non-finite time_s")
        if not np.isfinite(self.value_ugm3).all() or (self.value_ugm3 < 0).any():
            raise ObservationError("value_ugm3 must be finite and non-negative")
        unknown = set(np.unique(self.sensor_kind).tolist()) - _KINDS
        if unknown:
            raise ObservationError(f"unknown sensor_kind {sorted(unknown)}")
        if self.bias_sd is not None and (self.bias_sd < 0).any():
            raise ObservationError("bias_sd must be non-negative (NaN: unknown)")

    def __len__(self) -> int:
        return len(self.edge_id)

    @classmethod
    def create(
        cls,
        edge_id: npt.ArrayLike,
        time_s: npt.ArrayLike,
        pollutant: npt.ArrayLike,
        value_ugm3: npt.ArrayLike,
        sensor_id: npt.ArrayLike,
        sensor_kind: npt.ArrayLike,
    ) -> ObservationBatch:
        """Build from array-likes (``time_s`` in epoch seconds); scalars are broadcast."""
        edges = np.atleast_1d(np.asarray(edge_id, dtype=np.int64))
        n = len(edges)

        def column(a: npt.ArrayLike, dtype: type) -> Any:
            arr = np.atleast_1d(np.asarray(a))
            if len(arr) == 1 and n != 1:
                arr = np.repeat(arr, n)
            if dtype is np.str_:
                if arr.dtype.kind == "U" or not len(arr):
                    return arr
                if arr.dtype == object:  # str(x) of each item, in C
                    return arr.astype(np.str_)
                return np.asarray([str(x) for x in arr], dtype=np.str_)
            return arr.astype(dtype)

        return cls(
            edges,
            column(time_s, np.float64),
            column(pollutant, np.str_),
            column(value_ugm3, np.float64),
            column(sensor_id, np.str_),
            column(sensor_kind, np.str_),
        )

    @classmethod
    def empty(cls) -> ObservationBatch:
        return cls.create([], [], [], [], [], [])

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> ObservationBatch:
        """Rows with the keys of :data:`COLUMNS`; ``time`` is an aware datetime or epoch s."""
        rows = list(records)
        if not rows:
            return cls.empty()
        missing = set(COLUMNS) - set(rows[0])
        if missing:
            raise ObservationError(f"records lack {sorted(missing)}")
        return cls.create(
            [r["edge_id"] for r in rows],
            [_epoch_s(r["time"]) for r in rows],
            [r["pollutant"] for r in rows],
            [r["value_ugm3"] for r in rows],
            [r["sensor_id"] for r in rows],
            [r["sensor_kind"] for r in rows],
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ObservationBatch:
        """A DataFrame with :data:`COLUMNS`; ``time`` as datetime64 (UTC) or epoch seconds."""
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise ObservationError(f"frame lacks {sorted(missing)}")
        time = frame["time"]
        if pd.api.types.is_datetime64_any_dtype(time):
            utc = pd.to_datetime(time, utc=True)
            time_s = (utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)
        else:
            time_s = time.to_numpy(np.float64)
        return cls.create(
            frame["edge_id"].to_numpy(),
            time_s,
            frame["pollutant"].to_numpy(),
            frame["value_ugm3"].to_numpy(),
            frame["sensor_id"].to_numpy(),
            frame["sensor_kind"].to_numpy(),
        )

    def select(self, mask: npt.NDArray[np.bool_] | IntArray) -> ObservationBatch:
        """The rows picked by a boolean mask or an index array."""
        return ObservationBatch(
            self.edge_id[mask],
            self.time_s[mask],
            self.pollutant[mask],
            self.value_ugm3[mask],
            self.sensor_id[mask],
            self.sensor_kind[mask],
            None if self.bias_sd is None else self.bias_sd[mask],
        )

    def with_values(
        self, value_ugm3: FloatArray, bias_sd: FloatArray | None = None
    ) -> ObservationBatch:
        """The same rows with new values (e.g. after calibration) and, if given, the
        lasting error sd of each (otherwise the batch's own, if any)."""
        return ObservationBatch(
            self.edge_id,
            self.time_s,
            self.pollutant,
            value_ugm3,
            self.sensor_id,
            self.sensor_kind,
            self.bias_sd if bias_sd is None else bias_sd,
        )


def _epoch_s(t: Any) -> float:
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            raise ObservationError("observation times must be timezone-aware")
        return t.timestamp()
    return float(t)


def epoch_s(t: dt.datetime) -> float:
    """Seconds since the Unix epoch of an aware datetime (the batches' time axis)."""
    return _epoch_s(t)
