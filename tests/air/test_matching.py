"""Map-matching readings to edges: on-street points match, far ones are rejected and counted."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from airpath.air.matching import EdgeMatcher, MatchReject, MatchTolerance
from airpath.air.readings import ValidReading
from airpath.air.schema import Pollutant, Reading, SensorKind
from airpath.errors import InputError
from airpath.network.segments import MODE_RIDE

T0 = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def matcher(helsinki):
    return EdgeMatcher(helsinki)


def _on_edge(network, e):
    """(lat, lon) halfway along the first straight piece of edge ``e``."""
    pts = network.edge_geometry(e)
    lon, lat = 0.5 * (pts[0] + pts[1])
    return float(lat), float(lon)


def _reading(lat, lon, kind=SensorKind.MOBILE, sensor="s1"):
    return ValidReading(Reading(sensor, kind, lat, lon, T0, Pollutant.NO2, 20.0), 20.0)


def test_a_point_on_an_edge_matches_that_street(helsinki, matcher):
    ride = np.flatnonzero(np.asarray(helsinki.edge_mode) == MODE_RIDE)
    for e in ride[:: max(len(ride) // 25, 1)][:25]:
        lat, lon = _on_edge(helsinki, int(e))
        edge, dist = matcher.match_points([lat], [lon], [1.0])
        assert dist[0] < 0.5
        assert helsinki.edge_segment[edge[0]] == helsinki.edge_segment[e]


def test_far_points_are_rejected_with_the_reason(helsinki, matcher):
    _, _, lon1, lat1 = helsinki.manifest["bbox"]
    on = _on_edge(helsinki, int(np.flatnonzero(helsinki.edge_mode == MODE_RIDE)[0]))
    far = (lat1 + 0.01, lon1)  # ~1.1 km north of the extract
    result = matcher.match(
        [
            _reading(*on),
            _reading(*far),
            _reading(*far, kind=SensorKind.REFERENCE, sensor="ref"),
            _reading(*on, kind=SensorKind.LOW_COST, sensor="lc"),
        ]
    )
    assert len(result.batch) == 2
    assert result.rejected == {MatchReject.TOO_FAR: 2}
    assert result.n_rejected == 2
    assert sorted(result.batch.sensor_id.tolist()) == ["lc", "s1"]
    assert set(result.batch.sensor_kind.tolist()) == {"mobile", "low_cost"}


def test_tolerance_depends_on_the_sensor_kind(matcher, helsinki):
    _, _, lon1, lat1 = helsinki.manifest["bbox"]
    lat, lon = lat1 + 0.01, lon1
    _, dist = matcher.match_points([lat], [lon], [1e9])
    edge, _ = matcher.match_points([lat, lat], [lon, lon], [dist[0] + 1, dist[0] - 1])
    assert edge[0] >= 0
    assert edge[1] == -1
    assert MatchTolerance().for_kind("mobile") == 30.0
    assert MatchTolerance().for_kind("low_cost") == 100.0


def test_empty_input_and_bad_tolerances(matcher):
    edge, dist = matcher.match_points([], [], [])
    assert len(edge) == len(dist) == 0
    assert len(matcher.match([]).batch) == 0
    with pytest.raises(InputError):
        MatchTolerance(mobile_m=0.0)
    with pytest.raises(InputError):
        matcher.match_points([60.17], [24.94, 24.95], [30.0])
