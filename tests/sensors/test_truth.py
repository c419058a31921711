"""The truth model: positive, diurnal, incidents only where and when they happen."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from airpath.network.store import Network
from airpath.sensors.incidents import Incident, connected_edges, incident_from_spec
from airpath.sensors.simulator import CitySimulator, SimulationConfig

START = dt.datetime(2026, 5, 4, tzinfo=dt.UTC)  # a Monday


def _sim(
    net: Network, seed: int, hours: float = 3.0, incidents: list[Incident] | None = None
) -> CitySimulator:
    cfg = SimulationConfig.create(START, hours * 3600, seed, n_low_cost=0, n_mobile=0)
    return CitySimulator(net, cfg, incidents=incidents)


def test_truth_is_positive_and_finite_and_a_valid_field(helsinki: Network) -> None:
    sim = _sim(helsinki, 1, incidents=[])
    for minutes in (0, 61, 179):
        t = START + dt.timedelta(minutes=minutes)
        for arr in sim.truth_at(t).values():
            assert arr.shape == (helsinki.n_edges,)
            assert np.isfinite(arr).all()
            assert (arr > 0).all()
        assert sim.field_at(t).now("no2").shape == (helsinki.n_edges,)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no2_rush_hour_exceeds_night_on_a_weekday(helsinki: Network, seed: int) -> None:
    sim = _sim(helsinki, seed, hours=30, incidents=[])
    midnight = START.astimezone(sim.tz).replace(hour=0) + dt.timedelta(days=1)
    rush = sim.truth_at(midnight.replace(hour=8))["no2"].mean()
    night = sim.truth_at(midnight.replace(hour=4))["no2"].mean()
    assert rush > 1.5 * night


def test_truth_varies_in_space_beyond_the_prior(helsinki: Network) -> None:
    sim = _sim(helsinki, 4, incidents=[])
    ratio = sim.truth_at(START)["no2"] / helsinki.edge_prior_ugm3[0]
    assert ratio.std() / ratio.mean() > 0.05


def test_incident_raises_truth_on_its_edges_only_in_its_window(helsinki: Network) -> None:
    spec = {"start_offset_min": 30, "duration_min": 20, "factor": 2.5, "edge": 100}
    inc = incident_from_spec(helsinki, spec, START)
    with_inc = _sim(helsinki, 5, incidents=[inc])
    without = _sim(helsinki, 5, incidents=[])
    on = np.zeros(helsinki.n_edges, dtype=bool)
    on[list(inc.edges)] = True
    assert 2 < on.sum() < helsinki.n_edges // 4
    for minutes, active in ((29, False), (30, True), (49, True), (50, False), (90, False)):
        t = START + dt.timedelta(minutes=minutes)
        ratio = with_inc.truth_at(t)["no2"] / without.truth_at(t)["no2"]
        np.testing.assert_allclose(ratio[~on], 1.0)
        np.testing.assert_allclose(ratio[on], 2.5 if active else 1.0)
        pm = with_inc.truth_at(t)["pm10"][on] / without.truth_at(t)["pm10"][on]
        np.testing.assert_allclose(pm, 1.3 if active else 1.0)


def test_incident_patch_is_connected_and_about_a_kilometre(helsinki: Network) -> None:
    edges = connected_edges(helsinki, 100, 1000.0)
    length_m = float(helsinki.edge_length_m[list(edges)].sum())
    assert 1000.0 <= length_m <= 4000.0  # both directions of ~1 km of street
    nodes = set(helsinki.edge_tail[list(edges)]) | set(helsinki.edge_head[list(edges)])
    assert len(nodes) <= len(edges) + 1


def test_random_incidents_are_drawn_when_not_given(helsinki: Network) -> None:
    cfg = SimulationConfig.create(START, 86400 * 3, 7, incident_rate_per_day=4.0)
    sim = CitySimulator(helsinki, cfg)
    assert len(sim.incidents) > 3
    for inc in sim.incidents:
        assert 20 <= inc.duration_min <= 90
        assert 1.5 <= inc.factor <= 3.0
