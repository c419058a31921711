"""The columnar per-edge breakdown (:class:`airpath.routing.legs.Legs`)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import fields

import numpy as np
import pytest

from airpath.routing.legs import COLUMNS, Leg, Legs
from airpath.routing.router import Router

RECORDS = [
    Leg(4, 0.25, 1.0, "Mannerheimintie", 30.0, 7.5, 21.0, 0.8, False),
    Leg(9, 0.0, 1.0, "", 12.5, 9.0, 35.5, 1.1, True),
    Leg(2, 0.0, 0.5, "Aleksanterinkatu", 40.0, 10.0, 18.0, 0.6, False),
]


def test_columns_follow_the_leg_fields():
    assert tuple(f.name for f in fields(Leg)) == COLUMNS
    legs = Legs.of(RECORDS)
    assert legs.edge_id.tolist() == [4, 9, 2]
    assert legs.edge_id.dtype == np.int64
    assert legs.dose_ug.tolist() == [0.8, 1.1, 0.6]
    assert legs.dose_ug.dtype == np.float64
    assert legs.columns()["walk"].tolist() == [False, True, False]
    assert legs.name == ["Mannerheimintie", "", "Aleksanterinkatu"]
    assert list(legs.columns()) == list(COLUMNS)


def test_a_sequence_of_legs():
    legs = Legs.of(RECORDS)
    assert len(legs) == 3
    assert list(legs) == RECORDS
    assert legs[0] == RECORDS[0]
    assert legs[-1] == RECORDS[-1]
    assert legs[1:] == RECORDS[1:]
    assert legs[::-1] == RECORDS[::-1]
    with pytest.raises(IndexError):
        _ = legs[3]
    assert legs == RECORDS
    assert legs == Legs.of(RECORDS)
    assert legs != RECORDS[:2]
    assert legs != Legs.of(RECORDS[::-1])
    assert legs != "abc"
    assert not Legs.of([])
    assert "Legs([Leg(edge_id=4" in repr(legs)


def test_records_are_the_objects_the_constructor_makes():
    legs = Legs.of(RECORDS)
    for made, record in zip(legs, RECORDS, strict=True):
        # Python values of the same types, in field order, however the record is read.
        assert [(k, type(v), v) for k, v in vars(made).items()] == [
            (k, type(v), v) for k, v in vars(record).items()
        ]
        with pytest.raises(AttributeError):
            made.dose_ug = 0.0  # type: ignore[misc]  # frozen like any Leg
    assert [(k, type(v)) for k, v in vars(legs[1]).items()] == [
        (k, type(v)) for k, v in vars(RECORDS[1]).items()
    ]


def test_columns_of_unequal_length_are_refused():
    cols = Legs.of(RECORDS).columns()
    cols["name"] = cols["name"][:2]
    with pytest.raises(ValueError, match="one entry per piece"):
        Legs(**cols)


def test_copies_and_pickles_keep_the_columns():
    legs = Legs.of(RECORDS)
    for clone in (copy.copy(legs), copy.deepcopy(legs), pickle.loads(pickle.dumps(legs))):
        assert isinstance(clone, Legs)
        assert clone == legs
        assert list(clone.columns()) == list(COLUMNS)
    deep = copy.deepcopy(legs)
    deep.dose_ug[0] = 99.0
    assert legs.dose_ug[0] == 0.8


def test_a_changed_column_changes_equality():
    legs = Legs.of(RECORDS)
    other = copy.deepcopy(legs)
    other.dose_ug[2] = 0.7
    assert legs != other
    assert other != RECORDS
    renamed = copy.deepcopy(legs)
    renamed.name[0] = "Bulevardi"
    assert legs != renamed


def test_a_routes_legs_are_numpy_columns_and_a_list_of_names(helsinki):
    route = Router(helsinki).route((60.1780, 24.9370), (60.1655, 24.9520)).best
    legs = route.legs
    assert isinstance(legs, Legs)
    assert len(legs) == len(route.edge_path) >= 2
    dtypes = {"edge_id": np.int64, "walk": np.bool_}
    for c, column in legs.columns().items():
        if c == "name":
            assert type(column) is list
            assert {type(v) for v in column} == {str}
        else:
            assert isinstance(column, np.ndarray)
            assert column.dtype == dtypes.get(c, np.float64)
    assert legs.edge_id.tolist() == route.edge_path
    assert legs.length_m.sum() == pytest.approx(route.distance_m)
    assert legs.dose_ug.sum() == pytest.approx(route.dose_ug)
    feature_legs = route.to_feature()["properties"]["legs"]
    assert feature_legs[0] == {c: legs.columns()[c][0] for c in COLUMNS}


def test_changing_a_routes_legs_leaves_its_steps_alone(helsinki):
    """The columns are the route's own copy of its table, whose lengths the steps sum
    when they are read later."""
    router = Router(helsinki)
    ends = ((60.1780, 24.9370), (60.1655, 24.9520))
    expected = router.route(*ends).best.steps
    route = router.route(*ends).best
    route.legs.length_m[:] = 0.0
    route.legs.duration_s[:] = 0.0
    assert route.steps == expected
    assert sum(route.steps.distance_m) > 0
