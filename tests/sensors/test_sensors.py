"""Sensors against the truth: low-cost bias, reference tracking, mobile positions."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pytest

from airpath.air.schema import Reading, SensorKind
from airpath.errors import SimulationError
from airpath.network.store import Network
from airpath.sensors.incidents import project_m
from airpath.sensors.simulator import CitySimulator, SimulationConfig

START = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def run(helsinki: Network) -> tuple[CitySimulator, list[Reading]]:
    cfg = SimulationConfig.create(START, 3 * 3600, 11, slice_s=600, n_low_cost=6, n_mobile=3)
    sim = CitySimulator(helsinki, cfg)
    readings: list[Reading] = []
    for piece in sim:
        assert all(piece.start <= r.time < piece.end for r in piece.readings)
        readings += piece.readings
    return sim, readings


def test_every_kind_reports(run: tuple[CitySimulator, list[Reading]]) -> None:
    kinds = {r.sensor_kind for r in run[1]}
    assert kinds == {SensorKind.REFERENCE, SensorKind.LOW_COST, SensorKind.MOBILE}


def test_low_cost_bias_shows_against_truth(run: tuple[CitySimulator, list[Reading]]) -> None:
    sim, readings = run
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    predicted: dict[tuple[str, str], list[float]] = defaultdict(list)
    specs = {s.sensor_id: s for s in sim.low_cost}
    for r in readings:
        if r.sensor_kind is not SensorKind.LOW_COST:
            continue
        s = specs[r.sensor_id]
        i = s.pollutants.index(str(r.pollutant))
        true = float(sim.truth_at(r.time)[str(r.pollutant)][s.edge])
        days = (r.time - START).total_seconds() / 86400
        errors[r.sensor_id, r.pollutant].append(r.value - true)
        bias = (s.gain[i] - 1) * true + s.offset_ugm3[i] + s.drift_ugm3_per_day[i] * days
        predicted[r.sensor_id, r.pollutant].append(bias)
    assert len(errors) == 6 * 3
    for key, errs in errors.items():
        assert abs(np.mean(errs) - np.mean(predicted[key])) < 1.5, key
    assert max(abs(np.mean(e)) for e in errors.values()) > 2.0


def test_reference_tracks_hourly_truth(run: tuple[CitySimulator, list[Reading]]) -> None:
    sim, readings = run
    sites = {s.sensor_id: s for s in sim.stations}
    refs = [r for r in readings if r.sensor_kind is SensorKind.REFERENCE]
    # Hours ending 07:00 and 08:00; the one ending at 09:00 falls outside [start, end).
    assert len(refs) == len(sites) * 2 * 3
    for r in refs:
        minutes = [r.time - dt.timedelta(minutes=m) for m in range(1, 61)]
        true = np.mean(
            [sim.truth_at(t)[str(r.pollutant)][sites[r.sensor_id].edge] for t in minutes]
        )
        assert abs(r.value - true) < 0.15 * true + 2.0
        assert r.time.minute == 0


def _distance_to_network_m(net: Network, lat: float, lon: float) -> float:
    lat0 = float(np.mean(net.node_lat))
    pts = np.asarray(net.geom_lonlat, dtype=np.float64)
    x, y = project_m(pts[:, 0], pts[:, 1], lat0)
    off = np.asarray(net.geom_offsets)
    last = np.zeros(len(x), dtype=bool)
    last[off[1:] - 1] = True  # no segment from a polyline's end to the next one's start
    ax, ay, bx, by = x[:-1][~last[:-1]], y[:-1][~last[:-1]], x[1:][~last[:-1]], y[1:][~last[:-1]]
    px, py = project_m(np.array([lon]), np.array([lat]), lat0)
    dx, dy = bx - ax, by - ay
    seg2 = np.maximum(dx * dx + dy * dy, 1e-12)
    u = np.clip(((px - ax) * dx + (py - ay) * dy) / seg2, 0, 1)
    return float(np.min(np.hypot(ax + u * dx - px, ay + u * dy - py)))


def test_mobile_readings_lie_on_the_network_at_cycling_speed(
    run: tuple[CitySimulator, list[Reading]], helsinki: Network
) -> None:
    mobile = [r for r in run[1] if r.sensor_kind is SensorKind.MOBILE]
    assert len(mobile) == 3 * 3 * (3 * 3600 // 5)  # riders × pollutants × reports
    for r in mobile[::97]:
        assert _distance_to_network_m(helsinki, r.lat, r.lon) < 10.0
    speeds = np.array([r.speed_mps for r in mobile], dtype=np.float64)
    headings = np.array([r.heading_deg for r in mobile], dtype=np.float64)
    assert ((speeds >= 0.3) & (speeds <= 10.0)).all()
    # The embedded extract is half pedestrian streets, where the bike is pushed (1.4 m/s).
    assert 2.0 < np.median(speeds) < 7.0
    assert (speeds > 2.0).mean() > 0.5
    assert ((headings >= 0) & (headings < 360)).all()
    # They move: each rider covers well over a kilometre in three hours.
    by_rider: dict[str, list[Reading]] = defaultdict(list)
    for r in mobile:
        by_rider[r.sensor_id].append(r)
    for rs in by_rider.values():
        lats = np.array([r.lat for r in rs])
        lons = np.array([r.lon for r in rs])
        assert np.ptp(lats) * 111_000 + np.ptp(lons) * 55_000 > 300


def test_step_after_the_end_is_an_error(helsinki: Network) -> None:
    sim = CitySimulator(helsinki, SimulationConfig.create(START, 120, 1, n_mobile=1))
    assert len(list(sim)) == 2
    assert sim.done
    with pytest.raises(SimulationError):
        sim.step()


@pytest.mark.parametrize(
    ("duration_s", "slice_s"), [(0.0, 60.0), (-5.0, 60.0), (3600.0, 90.0), (3600.0, 30.0)]
)
def test_bad_config_is_a_simulation_error(duration_s: float, slice_s: float) -> None:
    with pytest.raises(SimulationError):
        SimulationConfig.create(START, duration_s, 1, slice_s=slice_s)


def test_naive_start_is_rejected() -> None:
    with pytest.raises(SimulationError):
        SimulationConfig.create(dt.datetime(2026, 5, 1), 3600, 1)
