"""A route's per-edge breakdown: one column per quantity, a :class:`Leg` per piece.

The breakdown is stored the way OSRM stores its per-segment ``annotation``: a list per
field (``legs.dose_ug[i]`` is the dose on the i-th piece), which a response serialises or
a notebook turns into a data frame without visiting each edge. It is also a sequence of
:class:`Leg` records, made when indexed or iterated, for code that wants one object per
edge. A route has a piece per edge travelled (a hundred in a city crossing); making an
object for each cost more than the rest of the route's detail together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, overload


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


class Legs(Sequence[Leg]):
    """The pieces of a route in order, as columns named like :class:`Leg`'s fields.

    Equal to any sequence of the same legs (a list of :class:`Leg` included); pickles,
    copies and compares by its columns.
    """

    __slots__ = COLUMNS

    edge_id: list[int]
    start: list[float]
    end: list[float]
    name: list[str]
    length_m: list[float]
    duration_s: list[float]
    concentration_ugm3: list[float]
    dose_ug: list[float]
    walk: list[bool]

    def __init__(
        self,
        edge_id: list[int],
        start: list[float],
        end: list[float],
        name: list[str],
        length_m: list[float],
        duration_s: list[float],
        concentration_ugm3: list[float],
        dose_ug: list[float],
        walk: list[bool],
    ) -> None:
        if not (
            len(edge_id)
            == len(start)
            == len(end)
            == len(name)
            == len(length_m)
            == len(duration_s)
            == len(concentration_ugm3)
            == len(dose_ug)
            == len(walk)
        ):
            raise ValueError("every column of a route's legs needs one entry per piece")
        self.edge_id, self.start, self.end, self.name = edge_id, start, end, name
        self.length_m, self.duration_s = length_m, duration_s
        self.concentration_ugm3, self.dose_ug, self.walk = concentration_ugm3, dose_ug, walk

    @classmethod
    def of(cls, legs: Sequence[Leg]) -> Legs:
        """The columns of ``legs``."""
        return cls(*([getattr(leg, c) for leg in legs] for c in COLUMNS))

    def columns(self) -> dict[str, list[Any]]:
        """``{field: column}``: the breakdown as a JSON object or a data frame's input."""
        return {c: getattr(self, c) for c in COLUMNS}

    def __len__(self) -> int:
        return len(self.edge_id)

    @overload
    def __getitem__(self, i: int) -> Leg: ...

    @overload
    def __getitem__(self, i: slice) -> list[Leg]: ...

    def __getitem__(self, i: int | slice) -> Leg | list[Leg]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return _leg(*(getattr(self, c)[i] for c in COLUMNS))

    def __iter__(self) -> Iterator[Leg]:
        columns = (getattr(self, c) for c in COLUMNS)
        return (_leg(*row) for row in zip(*columns, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Legs):
            return self.columns() == other.columns()
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable columns, like a list

    def __repr__(self) -> str:
        return f"Legs({list(self)!r})"

    def __getstate__(self) -> dict[str, list[Any]]:
        return self.columns()

    def __setstate__(self, state: dict[str, list[Any]]) -> None:
        for c in COLUMNS:
            setattr(self, c, state[c])


def _leg(
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
    """``Leg(...)`` without its ``__init__``: a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__``, three times slower than filling the new
    instance's dict in field order, which makes the same object (tested)."""
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
