"""The columnar turn-by-turn steps (:class:`airpath.routing.steps.Steps`)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import asdict

import pytest

from airpath.routing.router import Router
from airpath.routing.steps import COLUMNS, MANEUVER, Step, Steps


def _maneuver(kind: str, modifier: str, lon: float, before: int, after: int) -> dict:
    return {
        "type": kind,
        "modifier": modifier,
        "location": [lon, 60.17],
        "bearing_before": before,
        "bearing_after": after,
    }


RECORDS = [
    Step("Head north on A", "A", 120.5, 30.0, _maneuver("depart", "north", 24.93, 0, 2)),
    Step("Turn left onto B", "B", 80.0, 21.5, _maneuver("turn", "left", 24.94, 2, 272)),
    Step("Arrive at your destination", "", 0.0, 0.0, _maneuver("arrive", "", 24.95, 272, 0)),
]


def test_columns_are_the_step_fields_then_the_maneuver_keys():
    assert ("instruction", "name", "distance_m", "duration_s", *MANEUVER) == COLUMNS
    steps = Steps.of(RECORDS)
    assert steps.name == ["A", "B", ""]
    assert steps.type == ["depart", "turn", "arrive"]
    assert steps.modifier == ["north", "left", ""]
    assert steps.location[1] == [24.94, 60.17]
    assert steps.bearing_after == [2, 272, 0]
    assert list(steps.columns()) == list(COLUMNS)


def test_a_sequence_of_steps():
    steps = Steps.of(RECORDS)
    assert len(steps) == 3
    assert list(steps) == RECORDS
    assert steps[0] == RECORDS[0]
    assert steps[-1] == RECORDS[-1]
    assert steps[:2] == RECORDS[:2]
    with pytest.raises(IndexError):
        _ = steps[3]
    assert steps == RECORDS
    assert steps == Steps.of(RECORDS)
    assert steps != Steps.of(RECORDS[::-1])
    assert steps != RECORDS[1:]
    assert not Steps.of([])
    assert "Steps([Step(instruction='Head north on A'" in repr(steps)


def test_records_are_the_objects_the_constructor_makes():
    steps = Steps.of(RECORDS)
    for made, record in zip(steps, RECORDS, strict=True):
        assert [(k, type(v), v) for k, v in vars(made).items()] == [
            (k, type(v), v) for k, v in vars(record).items()
        ]
        assert list(made.maneuver) == list(MANEUVER)
    # A record's maneuver is its own: changing it leaves the columns alone.
    steps[0].maneuver["location"][0] = 0.0
    assert steps.location[0] == [24.93, 60.17]


def test_columns_of_unequal_length_are_refused():
    cols = Steps.of(RECORDS).columns()
    cols["modifier"] = cols["modifier"][:2]
    with pytest.raises(ValueError, match="one entry per step"):
        Steps(**cols)


def test_copies_and_pickles_keep_the_columns():
    steps = Steps.of(RECORDS)
    for clone in (copy.copy(steps), copy.deepcopy(steps), pickle.loads(pickle.dumps(steps))):
        assert isinstance(clone, Steps)
        assert clone == steps
    deep = copy.deepcopy(steps)
    deep.location[0][0] = 0.0
    assert steps.location[0] == [24.93, 60.17]


def test_a_routes_steps_are_python_columns(helsinki):
    route = Router(helsinki).route((60.1780, 24.9370), (60.1655, 24.9520)).best
    steps = route.steps
    assert isinstance(steps, Steps)
    assert len(steps) >= 2
    types = {"distance_m": float, "duration_s": float, "bearing_before": int}
    types |= {"bearing_after": int, "location": list}
    for c, column in steps.columns().items():
        assert type(column) is list
        assert {type(v) for v in column} == {types.get(c, str)}
    assert steps.type[0] == "depart"
    assert steps.type[-1] == "arrive"
    assert set(steps.type[1:-1]) <= {"turn"}
    assert sum(steps.distance_m) == pytest.approx(route.distance_m)
    assert route.to_feature()["properties"]["steps"] == [asdict(s) for s in steps]
