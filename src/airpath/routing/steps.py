"""A route's turn-by-turn steps: one column per field, a :class:`Step` per step.

A step is OSRM's: an instruction, the street's name, the distance and duration of the
run of pieces on that street, and a ``maneuver`` (``type``, ``modifier``, ``location``,
``bearing_before``, ``bearing_after``). :class:`Steps` keeps the maneuver's keys as
columns of their own (see :mod:`.columns` for why columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airpath.routing.columns import Columns

MANEUVER = ("type", "modifier", "location", "bearing_before", "bearing_after")
COLUMNS = ("instruction", "name", "distance_m", "duration_s", *MANEUVER)


@dataclass(frozen=True)
class Step:
    instruction: str
    name: str
    distance_m: float
    duration_s: float
    maneuver: dict[str, Any]


class Steps(Columns[Step]):
    """The steps of a route in order: :class:`Step`'s fields as columns, and the keys
    of its ``maneuver`` (``steps.location[i]`` is ``step.maneuver["location"]``)."""

    __slots__ = COLUMNS
    COLUMNS = COLUMNS
    ROW = "step"

    instruction: list[str]
    name: list[str]
    distance_m: list[float]
    duration_s: list[float]
    type: list[str]  # depart, turn or arrive
    modifier: list[str]  # a compass direction (depart), a turn's kind, "" (arrive)
    location: list[list[float]]  # [lon, lat]
    bearing_before: list[int]
    bearing_after: list[int]

    def __init__(
        self,
        instruction: list[str],
        name: list[str],
        distance_m: list[float],
        duration_s: list[float],
        type: list[str],  # the maneuver's key
        modifier: list[str],
        location: list[list[float]],
        bearing_before: list[int],
        bearing_after: list[int],
    ) -> None:
        self._set(
            (
                instruction,
                name,
                distance_m,
                duration_s,
                type,
                modifier,
                location,
                bearing_before,
                bearing_after,
            )
        )

    @staticmethod
    def _row(record: Any) -> tuple[Any, ...]:
        m = record.maneuver
        return (
            record.instruction,
            record.name,
            record.distance_m,
            record.duration_s,
            m["type"],
            m["modifier"],
            list(m["location"]),  # the column's own copy, as a record gets its own
            m["bearing_before"],
            m["bearing_after"],
        )

    @staticmethod
    def _record(
        instruction: str,
        name: str,
        distance_m: float,
        duration_s: float,
        kind: str,
        modifier: str,
        location: list[float],
        bearing_before: int,
        bearing_after: int,
    ) -> Step:
        """``Step(...)`` without its ``__init__`` (see ``Legs._record``); the maneuver
        gets its own copy of the location."""
        step = object.__new__(Step)
        state = step.__dict__
        state["instruction"] = instruction
        state["name"] = name
        state["distance_m"] = distance_m
        state["duration_s"] = duration_s
        state["maneuver"] = {
            "type": kind,
            "modifier": modifier,
            "location": list(location),
            "bearing_before": bearing_before,
            "bearing_after": bearing_after,
        }
        return step
