"""A field plan: everything needed to evaluate an estimate on any subset of edges.

Learning is sequential (one state, folded batch by batch); evaluating the field on every
edge is not: given the observations and the forecast levels, each edge's posterior is
independent of the others. :meth:`~airpath.air.kriging.ResidualKriging.plan` captures
that small, picklable part of the state, and :meth:`FieldPlan.evaluate` computes the
field for the edges asked for — all of them on one machine, or one spatial tile per task
in the Spark job, with the same numbers either way.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from airpath.air.estimate import EdgeSpace, FieldEstimate, PollutantEstimate, lognormal_std
from airpath.air.observations import FloatArray, IntArray

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class PollutantPlan:
    """One pollutant's posterior ingredients; ``obs_xy_m`` is empty for the prior alone.

    The observations are what the residual is kriged from (the observed edges pooled
    per cell, :func:`airpath.air.kriging.pool_cells`); ``n_observed_edges`` counts the
    edges behind them.

    Per horizon ``h``: ``level[h]`` and ``level_var[h]`` (log units, the forecast
    city-wide level), and ``decay[h]``, the factor on the kriged street residual.
    """

    obs_xy_m: FloatArray
    obs_value: FloatArray
    obs_noise_var: FloatArray
    level: FloatArray
    level_var: FloatArray
    decay: FloatArray
    freshness_s: float | None
    n_observed_edges: int
    residual_sd: float
    length_scale_m: float


@dataclass(frozen=True)
class FieldPlan:
    """Posterior ingredients per pollutant (with each one's residual covariance) plus
    the model's fixed parameters."""

    valid_at: dt.datetime
    horizons_min: tuple[float, ...]
    model_version: str
    prior_log_var: float
    n_neighbours: int
    pollutants: Mapping[str, PollutantPlan]

    def evaluate(
        self, space: EdgeSpace, edges: npt.ArrayLike | None = None
    ) -> dict[str, tuple[FloatArray, FloatArray]]:
        """Mean and std (µg/m³), each ``(len(horizons_min), len(edges))``, per pollutant."""
        all_edges = edges is None
        idx: IntArray = (
            np.arange(space.n_edges, dtype=np.int64)
            if all_edges
            else np.asarray(edges, dtype=np.int64)
        )
        sites_xy, site_of_edge = space.sites
        site_ids, inverse = np.unique(site_of_edge[idx], return_inverse=True)
        inverse = inverse.reshape(-1)
        out: dict[str, tuple[FloatArray, FloatArray]] = {}
        for p, pp in self.pollutants.items():
            prior = space.prior_ugm3[p][idx]
            n_h = len(self.horizons_min)
            if len(pp.obs_value) == 0:
                std = lognormal_std(prior, self.prior_log_var)
                out[p] = (np.tile(prior, (n_h, 1)), np.tile(std, (n_h, 1)))
                continue
            from airpath.air.kriging import simple_kriging

            z, v = simple_kriging(
                pp.obs_xy_m,
                pp.obs_value,
                pp.obs_noise_var,
                sites_xy[site_ids],
                variance=pp.residual_sd**2,
                length_scale_m=pp.length_scale_m,
                n_neighbours=self.n_neighbours,
            )
            residual, residual_var = z[inverse], v[inverse]
            means, stds = [], []
            sd2 = pp.residual_sd**2
            for k in range(n_h):
                decay = float(pp.decay[k])
                resid_var = sd2 - decay**2 * (sd2 - residual_var)
                log_var = float(pp.level_var[k]) + resid_var
                log_mean = -0.5 * self.prior_log_var + float(pp.level[k]) + decay * residual
                mean = prior * np.exp(log_mean + 0.5 * log_var)
                means.append(mean)
                stds.append(lognormal_std(mean, log_var))
            out[p] = (np.stack(means), np.stack(stds))
        return out

    def estimate(self, space: EdgeSpace) -> FieldEstimate:
        """The whole field as a :class:`FieldEstimate` (what ``predict`` returns)."""
        values = self.evaluate(space)
        return FieldEstimate(
            self.valid_at,
            self.horizons_min,
            self.model_version,
            {
                p: PollutantEstimate(
                    values[p][0], values[p][1], pp.freshness_s, pp.n_observed_edges
                )
                for p, pp in self.pollutants.items()
            },
        )
