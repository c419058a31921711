"""Evaluation arithmetic on hand-made cases: metrics, incident latency, exposure benefit."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from airpath.air.evaluation_exposure import (
    _Outcome,
    _summarise,
    dose_under_ug,
    exposure_benefit,
    median_share_interval,
    random_trips,
)
from airpath.air.evaluation_scores import IncidentRecord, ScoreTable
from airpath.routing.field import PollutionField
from airpath.routing.legs import Leg, Legs
from airpath.routing.result import Route
from airpath.sensors.incidents import Incident

T0 = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)


def test_score_table_matches_numpy():
    rng = np.random.default_rng(3)
    table = ScoreTable()
    ys, yhats = [], []
    for _ in range(3):
        y, yhat = rng.uniform(5, 50, 40), rng.uniform(5, 50, 40)
        table.add("ours", "no2", 0, yhat, y)
        table.add("idw", "no2", 0, yhat + 2.0, y)
        ys.append(y)
        yhats.append(yhat)
    y, yhat = np.concatenate(ys), np.concatenate(yhats)
    m = table.metric("ours", "no2", 0)
    assert m["n"] == 120
    assert m["rmse_ugm3"] == pytest.approx(np.sqrt(np.mean((yhat - y) ** 2)))
    assert m["mae_ugm3"] == pytest.approx(np.mean(np.abs(yhat - y)))
    r2 = 1 - np.sum((yhat - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert m["r2"] == pytest.approx(r2)
    idw = table.metric("idw", "no2", 0)["rmse_ugm3"]
    assert table.reduction_pct("ours", "idw")["no2"]["0"] == pytest.approx(
        100 * (1 - m["rmse_ugm3"] / idw)
    )
    assert set(table.to_json()) == {"ours", "idw"}


def test_incident_latency_counts_batches_from_the_first_reading():
    inc = Incident(T0, 60.0, 2.0, (0, 1))
    rec = IncidentRecord(inc, np.array([0, 1]), first_observed_batch=11)
    rec.baseline_ugm3 = 10.0
    rec.batches = [10, 11, 12, 13]
    rec.times = [T0 + dt.timedelta(minutes=5 * k) for k in range(4)]
    rec.ours_ugm3 = [np.array([10.0, 10.0]), np.array([11.0, 11.0]), np.array([11.0, 12.0]),
                     np.array([12.5, 12.5])]  # fmt: skip
    assert rec.latency_batches() == 2  # batch 13: mean 12.5 > 1.2 × 10
    rec.first_observed_batch = None
    assert rec.latency_batches() is None


def _leg(edge, start, end):
    return Leg(edge, start, end, "", 0.0, 0.0, 0.0, 0.0, False)


def test_dose_under_truth_by_hand():
    route = Route("x", "x", "flexible", [], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                  Legs.of([_leg(0, 0.0, 1.0), _leg(2, 0.25, 0.75)]), [])  # fmt: skip
    inhaled = np.array([2.0, 100.0, 4.0])
    truth = np.array([10.0, 1000.0, 20.0])
    assert dose_under_ug(route, inhaled, truth) == pytest.approx(1 * 2 * 10 + 0.5 * 4 * 20)


def test_reductions_medians_and_share_by_hand():
    base_dose, base_dist = np.array([10.0, 20.0]), np.array([1000.0, 2000.0])
    raw = {
        "truth": {"least_exposure": _Outcome([5.0, 10.0], [1100.0, 2000.0])},
        "ours": {"least_exposure": _Outcome([8.0, 10.0], [1000.0, 2100.0])},
    }
    out = _summarise(raw, base_dose, base_dist, 2, 10.0)
    truth = out["table"]["truth"]["least_exposure"]
    ours = out["table"]["ours"]["least_exposure"]
    assert truth["median_dose_reduction_pct"] == pytest.approx(50.0)
    assert ours["median_dose_reduction_pct"] == pytest.approx(35.0)  # median of 20 and 50
    assert truth["median_extra_distance_pct"] == pytest.approx(5.0)  # median of 10 and 0
    share = out["share_realised"]["ours"]["least_exposure"]
    assert share["share_of_median_reduction"] == pytest.approx(0.7)
    assert share["share_of_total_dose_saved"] == pytest.approx(12.0 / 15.0)


def test_median_share_interval_is_a_paired_bootstrap():
    rng = np.random.default_rng(4)
    truth = rng.gamma(2.0, 3.0, 200)
    # The same reductions: every resample's ratio is exactly 1.
    assert median_share_interval(truth, truth) == [1.0, 1.0]
    # Half of each: the interval sits around 0.5 and holds the sample's own share.
    half = median_share_interval(0.5 * truth, truth)
    assert half == pytest.approx([0.5, 0.5])
    noisy = truth * rng.uniform(0.5, 1.1, 200)
    low, high = median_share_interval(noisy, truth)
    assert low < np.median(noisy) / np.median(truth) < high
    assert 0.1 < high - low < 0.5  # 200 trips: wide, but not everything
    # Resamples are paired: shuffling the field's trips against the truth's widens it.
    low_s, high_s = median_share_interval(rng.permutation(noisy), truth)
    assert high_s - low_s > high - low
    # Nothing to resample, or no resample with a positive truth median.
    assert all(math.isnan(v) for v in median_share_interval(np.array([]), np.array([])))
    assert all(math.isnan(v) for v in median_share_interval(truth[:3], -truth[:3]))


def test_exposure_benefit_recomputes_dose_under_the_truth(helsinki):
    rng = np.random.default_rng(0)
    prior = np.asarray(helsinki.edge_prior_ugm3, dtype=np.float64)
    truth = {p: prior[k] * rng.uniform(0.5, 2.0, helsinki.n_edges)
             for k, p in enumerate(helsinki.pollutants)}  # fmt: skip
    flat = {p: np.full(helsinki.n_edges, 20.0) for p in helsinki.pollutants}
    fields = {
        "truth": PollutionField.create("t", T0, truth, n_edges=helsinki.n_edges),
        "flat": PollutionField.create("f", T0, flat, n_edges=helsinki.n_edges),
    }
    trips = random_trips(helsinki, 6, seed=1)
    assert len(trips) == 6
    assert all(1000.0 <= t.straight_m <= 8000.0 for t in trips)
    out = exposure_benefit(helsinki, fields, truth["no2"], trips, max_detour_pct=10.0)
    assert out["n_trips_routed"] == 6
    best = out["table"]["truth"]["least_exposure"]
    # Routing on the truth can only do at least as well, under the truth, as the shortest.
    assert best["median_dose_reduction_pct"] >= -1e-9
    assert best["max_extra_distance_pct"] <= 10.0 + 1e-6
    assert set(out["table"]) == {"truth", "flat"}
    assert set(out["share_realised"]) == {"flat"}


def test_dose_under_truth_agrees_with_the_router_on_the_truth_field(helsinki):
    from airpath.routing.router import Router

    rng = np.random.default_rng(5)
    prior = np.asarray(helsinki.edge_prior_ugm3, dtype=np.float64)
    truth = {p: prior[k] * rng.uniform(0.5, 2.0, helsinki.n_edges)
             for k, p in enumerate(helsinki.pollutants)}  # fmt: skip
    router = Router(helsinki, field=PollutionField.create("t", T0, truth, n_edges=helsinki.n_edges))
    trip = random_trips(helsinki, 1, seed=2)[0]
    route = router.route(trip.origin, trip.destination, "least_exposure").best
    inhaled = np.asarray(helsinki.edge_inhaled_m3, dtype=np.float64)
    by_hand = sum(
        (leg.end - leg.start) * float(inhaled[leg.edge_id]) * float(truth["no2"][leg.edge_id])
        for leg in route.legs
    )
    assert dose_under_ug(route, inhaled, truth["no2"]) == pytest.approx(by_hand, rel=1e-12)
    assert route.dose_ug == pytest.approx(by_hand, rel=1e-9)
