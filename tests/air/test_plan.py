"""A field plan evaluated on any split of the edges gives the same numbers as predict."""

from __future__ import annotations

import datetime as dt

import numpy as np

from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import ResidualKriging
from airpath.air.observations import ObservationBatch
from airpath.network.store import Network

T0 = dt.datetime(2026, 5, 4, 8, tzinfo=dt.UTC)


def test_plan_on_tiles_equals_predict(helsinki: Network) -> None:
    space = EdgeSpace.from_network(helsinki)
    model = ResidualKriging(space)
    rng = np.random.default_rng(0)
    for k in range(4):
        edges = rng.integers(0, helsinki.n_edges, 30)
        model.learn(
            ObservationBatch.create(
                edges,
                [T0.timestamp() + 60 * k] * 30,
                rng.choice(["no2", "pm25", "pm10"], 30),
                rng.uniform(5, 60, 30),
                [f"s{i}" for i in range(30)],
                "reference",
            )
        )
    t = T0 + dt.timedelta(minutes=5)
    horizons = [0.0, 15.0, 60.0]
    whole = model.predict(t, horizons)
    plan = model.plan(t, horizons)
    pieces = np.array_split(rng.permutation(helsinki.n_edges), 5)
    for p, est in whole.pollutants.items():
        mean = np.empty_like(est.mean_ugm3)
        std = np.empty_like(est.std_ugm3)
        for edges in pieces:
            m, s = plan.evaluate(space, edges)[p]
            mean[:, edges], std[:, edges] = m, s
        np.testing.assert_array_equal(mean, est.mean_ugm3)
        np.testing.assert_array_equal(std, est.std_ugm3)
        assert est.n_observed_edges > 0
        assert not np.allclose(est.mean_ugm3[0], space.prior_ugm3[p])
