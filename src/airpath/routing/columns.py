"""Records kept as columns: one per field, a record made only when one is asked for.

A route's per-edge breakdown (:class:`.legs.Legs`) and its turn-by-turn steps
(:class:`.steps.Steps`) are stored the way OSRM stores its per-segment ``annotation``: a
list or an array per field, which a response serialises or a notebook turns into a data
frame without visiting each record. They are also sequences of records, made when indexed
or iterated, for code that wants one object per row. A route has a few dozen steps and a
hundred pieces; making an object for each cost more than the arithmetic behind them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Self, TypeVar, overload

import numpy as np

R = TypeVar("R")


class Columns(Sequence[R]):
    """Rows of records of one type, a column per name in ``COLUMNS``: a list, or a NumPy
    array for numbers (records get Python values either way).

    Equal to any sequence of the same records (a list of them included); pickles,
    copies and compares by its columns. A subclass names its columns (and slots them),
    says what a row is, and turns a record into a row and back.
    """

    __slots__ = ()
    COLUMNS: ClassVar[tuple[str, ...]]
    ROW: ClassVar[str]  # what one row is, for messages: "piece", "step"

    def _set(self, columns: Sequence[Any]) -> None:
        n = len(columns[0])
        if any(len(column) != n for column in columns):
            name = type(self).__name__.lower()
            raise ValueError(f"every column of a route's {name} needs one entry per {self.ROW}")
        for c, column in zip(self.COLUMNS, columns, strict=True):
            setattr(self, c, column)

    @staticmethod
    def _row(record: Any) -> tuple[Any, ...]:
        """``record``'s values in column order."""
        raise NotImplementedError

    @staticmethod
    def _record(*row: Any) -> Any:
        """The record of one row (the values in column order)."""
        raise NotImplementedError

    @classmethod
    def of(cls, records: Iterable[R]) -> Self:
        """The columns of ``records``."""
        rows = [cls._row(r) for r in records]
        if not rows:
            return cls(*([] for _ in cls.COLUMNS))
        return cls(*(list(column) for column in zip(*rows, strict=True)))

    def columns(self) -> dict[str, Any]:
        """``{column: values}``: the rows as a data frame's input (lists and arrays)."""
        return {c: getattr(self, c) for c in self.COLUMNS}

    def __len__(self) -> int:
        return len(getattr(self, self.COLUMNS[0]))

    @overload
    def __getitem__(self, i: int) -> R: ...

    @overload
    def __getitem__(self, i: slice) -> list[R]: ...

    def __getitem__(self, i: int | slice) -> R | list[R]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        values = (getattr(self, c)[i] for c in self.COLUMNS)
        record: R = self._record(*(v.item() if isinstance(v, np.generic) else v for v in values))
        return record

    def __iter__(self) -> Iterator[R]:
        columns = (_values(getattr(self, c)) for c in self.COLUMNS)
        make = self._record
        return (make(*row) for row in zip(*columns, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Columns):
            if type(other) is not type(self):
                return False
            mine, theirs = self.columns(), other.columns()
            return all(_values(mine[c]) == _values(theirs[c]) for c in self.COLUMNS)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable columns, like a list

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return self.columns()

    def __setstate__(self, state: dict[str, Any]) -> None:
        for c in self.COLUMNS:
            setattr(self, c, state[c])


def _values(column: Any) -> list[Any]:
    """A column's values as Python objects."""
    if isinstance(column, np.ndarray):
        values: list[Any] = column.tolist()
        return values
    return list(column) if not isinstance(column, list) else column
