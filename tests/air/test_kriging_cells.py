"""Observed edges pooled per cell before kriging (``KrigingParams.cell_m``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import KrigingParams, ResidualKriging, pool_cells, simple_kriging
from airpath.air.observations import ObservationBatch

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)


def test_a_cell_averages_its_noise_and_keeps_its_lasting_error_whole() -> None:
    xy = np.array([[10.0, 10.0], [50.0, 10.0], [90.0, 10.0], [150.0, 10.0], [450.0, 10.0]])
    values = np.array([0.1, 0.2, 0.3, 0.4, -0.5])
    noise = np.full(5, 0.04)
    lasting = np.array([0.01, 0.01, 0.01, 0.01, 0.03])
    pxy, pv, pvar = pool_cells(xy, values, noise, lasting, 200.0)
    assert len(pv) == 2
    assert pxy[0].tolist() == pytest.approx([75.0, 10.0])
    assert pv.tolist() == pytest.approx([0.25, -0.5])
    # Four equal readings: the noise over four, the lasting part as it is.
    assert pvar.tolist() == pytest.approx([0.04 / 4 + 0.01, 0.04 + 0.03])


def test_a_cell_weights_its_observations_by_their_precision() -> None:
    xy = np.array([[10.0, 10.0], [20.0, 10.0]])
    _, pv, pvar = pool_cells(xy, np.array([1.0, 0.0]), np.array([0.01, 0.09]), np.zeros(2), 100.0)
    assert pv[0] == pytest.approx(0.9)  # weights 100 and 100/9
    assert pvar[0] == pytest.approx(1.0 / (100.0 + 100.0 / 9.0))
    assert pvar[0] < 0.01


def test_pooling_lets_a_station_beyond_a_dense_track_count() -> None:
    """Ten nearest edges of a bike's track screen off a station; ten nearest cells do not."""
    track = np.column_stack([np.arange(20) * 20.0, np.zeros(20)])
    xy = np.vstack([track, [[1500.0, 0.0]]])
    values = np.r_[np.full(20, 0.3), -0.3]
    noise, lasting = np.full(21, 0.01), np.zeros(21)
    query = np.array([[800.0, 0.0]])  # the station is 700 m off, the track 420 m
    kw = {"variance": 0.09, "length_scale_m": 1500.0, "n_neighbours": 10}
    by_edge, _ = simple_kriging(xy, values, noise + lasting, query, **kw)
    by_cell, _ = simple_kriging(*pool_cells(xy, values, noise, lasting, 200.0), query, **kw)
    assert by_cell[0] < by_edge[0] - 0.1


def test_the_plan_krige_from_cells_and_counts_edges() -> None:
    track = np.column_stack([np.arange(30) * 20.0, np.zeros(30)])
    xy = np.vstack([track, [[5000.0, 0.0]]])
    space = EdgeSpace(xy, {"no2": np.full(len(xy), 20.0)})
    edges = list(range(len(xy)))
    batch = ObservationBatch.create(
        edges,
        [T0.timestamp()] * len(edges),
        "no2",
        [30.0] * len(edges),
        ["bike-1"] * 30 + ["ref-1"],
        ["mobile"] * 30 + ["reference"],
    )
    pooled = ResidualKriging(space, KrigingParams(fit_covariance=False))
    per_edge = ResidualKriging(space, KrigingParams(fit_covariance=False, cell_m=0.0))
    for model in (pooled, per_edge):
        model.learn(batch)
    plan = pooled.plan(T0, [0.0]).pollutants["no2"]
    plan_edges = per_edge.plan(T0, [0.0]).pollutants["no2"]
    assert len(plan_edges.obs_value) == 31
    assert len(plan.obs_value) == 4  # three 200 m cells of track and the station
    assert plan.n_observed_edges == plan_edges.n_observed_edges == 31
    mean = pooled.predict(T0, [0.0]).pollutants["no2"].mean_ugm3
    assert np.isfinite(mean).all()
    assert (mean > 0).all()


def test_pooling_off_is_the_per_edge_model() -> None:
    params = KrigingParams(fit_covariance=False, cell_m=0.0)
    xy = np.array([[0.0, 0.0], [30.0, 0.0], [2000.0, 0.0]])
    space = EdgeSpace(xy, {"no2": np.full(3, 20.0)})
    model = ResidualKriging(space, params)
    model.learn(
        ObservationBatch.create(
            [0, 1], [T0.timestamp()] * 2, "no2", [30.0, 34.0], ["b", "b"], ["mobile"] * 2
        )
    )
    plan = model.plan(T0, [0.0]).pollutants["no2"]
    assert plan.obs_xy_m.tolist() == xy[:2].tolist()
