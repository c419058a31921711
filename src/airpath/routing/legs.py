"""A route's per-edge breakdown: one column per quantity, a :class:`Leg` per piece.

``legs.dose_ug[i]`` is the dose on the i-th piece (see :mod:`.columns` for why columns).
The numbers are NumPy arrays, the breakdown as the route's compiled assembly computes it
(a data frame or a sum takes them as they are; ``.tolist()`` gives Python numbers), the
street names a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.routing.columns import Columns

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Leg:
    """The part of edge ``edge_id`` travelled, from ``start`` to ``end`` (fractions)."""

    edge_id: int
    start: float
    end: float
    name: str
    length_m: float
    duration_s: float
    concentration_ugm3: float
    dose_ug: float
    walk: bool


COLUMNS = tuple(f.name for f in fields(Leg))


class Legs(Columns[Leg]):
    """The pieces of a route in order, as columns named like :class:`Leg`'s fields."""

    __slots__ = COLUMNS
    COLUMNS = COLUMNS
    ROW = "piece"

    edge_id: IntArray
    start: FloatArray
    end: FloatArray
    name: list[str]
    length_m: FloatArray
    duration_s: FloatArray
    concentration_ugm3: FloatArray
    dose_ug: FloatArray
    walk: BoolArray

    def __init__(
        self,
        edge_id: Sequence[int] | IntArray,
        start: Sequence[float] | FloatArray,
        end: Sequence[float] | FloatArray,
        name: Sequence[str],
        length_m: Sequence[float] | FloatArray,
        duration_s: Sequence[float] | FloatArray,
        concentration_ugm3: Sequence[float] | FloatArray,
        dose_ug: Sequence[float] | FloatArray,
        walk: Sequence[bool] | BoolArray,
    ) -> None:
        """Columns as given when they are arrays of these types already (no copy)."""
        f8 = np.float64
        self._set(
            (
                np.asarray(edge_id, dtype=np.int64),
                np.asarray(start, dtype=f8),
                np.asarray(end, dtype=f8),
                name if isinstance(name, list) else list(name),
                np.asarray(length_m, dtype=f8),
                np.asarray(duration_s, dtype=f8),
                np.asarray(concentration_ugm3, dtype=f8),
                np.asarray(dose_ug, dtype=f8),
                np.asarray(walk, dtype=np.bool_),
            )
        )

    @staticmethod
    def _row(record: Any) -> tuple[Any, ...]:
        return tuple(getattr(record, c) for c in COLUMNS)

    @staticmethod
    def _record(
        edge_id: int,
        start: float,
        end: float,
        name: str,
        length_m: float,
        duration_s: float,
        concentration_ugm3: float,
        dose_ug: float,
        walk: bool,
    ) -> Leg:
        """``Leg(...)`` without its ``__init__``: a frozen dataclass's ``__init__`` sets
        each field through ``object.__setattr__``, three times slower than filling the
        new instance's dict in field order, which makes the same object (tested)."""
        leg = object.__new__(Leg)
        state = leg.__dict__
        state["edge_id"] = edge_id
        state["start"] = start
        state["end"] = end
        state["name"] = name
        state["length_m"] = length_m
        state["duration_s"] = duration_s
        state["concentration_ugm3"] = concentration_ugm3
        state["dose_ug"] = dose_ug
        state["walk"] = walk
        return leg
