"""A pollution field: per-edge concentrations for several pollutants and forecast horizons.

This is what the streaming pipeline publishes and what :meth:`Router.apply_field` takes.
Arrays are in the network's edge order (see :mod:`airpath.network.store`).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from airpath.errors import FieldError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PollutionField:
    """Concentrations in µg/m³, shape ``(len(horizons_min), n_edges)`` per pollutant.

    ``horizons_min`` are minutes after ``valid_at`` and start with 0 (the estimate for
    ``valid_at`` itself); more horizons are forecasts (e.g. ``(0, 15, 30, 60)``).
    ``uncertainty_ugm3`` optionally holds a standard deviation of the same shape.
    Build one with :meth:`create`, which validates; the router trusts a field it holds.
    """

    version: str
    valid_at: dt.datetime
    horizons_min: tuple[float, ...]
    concentration_ugm3: Mapping[str, FloatArray]
    uncertainty_ugm3: Mapping[str, FloatArray] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        version: str,
        valid_at: dt.datetime,
        concentration_ugm3: Mapping[str, npt.ArrayLike],
        *,
        n_edges: int,
        horizons_min: tuple[float, ...] = (0.0,),
        uncertainty_ugm3: Mapping[str, npt.ArrayLike] | None = None,
    ) -> PollutionField:
        """Validate and build a field for a network with ``n_edges`` edges.

        A 1-D array is taken as the single horizon 0. Raises :class:`FieldError` on the
        wrong shape, NaN or negative values, or bad horizons.
        """
        hz = tuple(float(h) for h in horizons_min)
        if not hz or hz[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(hz)):
            raise FieldError(f"horizons must start at 0 and increase, got {hz}")
        if valid_at.tzinfo is None:
            raise FieldError("valid_at must be timezone-aware")
        if not concentration_ugm3:
            raise FieldError("a field needs at least one pollutant")
        conc = {p: _check(p, a, len(hz), n_edges) for p, a in concentration_ugm3.items()}
        unc = {
            p: _check(f"{p} uncertainty", a, len(hz), n_edges)
            for p, a in (uncertainty_ugm3 or {}).items()
        }
        return cls(str(version), valid_at.astimezone(dt.UTC), hz, conc, unc)

    @functools.cached_property
    def horizons_s(self) -> FloatArray:
        """The horizons in seconds (read-only), made once: every query reads them."""
        seconds = np.asarray(self.horizons_min, dtype=np.float64) * 60.0
        seconds.setflags(write=False)
        return seconds

    def now(self, pollutant: str) -> FloatArray:
        """Concentration at ``valid_at`` (horizon 0)."""
        return self.concentration_ugm3[pollutant][0]


def _check(name: str, values: npt.ArrayLike, n_horizons: int, n_edges: int) -> FloatArray:
    # A private copy: the caller may reuse its buffers while the router serves this field.
    arr = np.array(values, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.shape != (n_horizons, n_edges):
        raise FieldError(
            f"{name}: shape {arr.shape}, want ({n_horizons}, {n_edges}) (horizons × network edges)"
        )
    # Two reductions instead of elementwise masks and counts (fields have millions of
    # values): min and max propagate NaN and every comparison with NaN is False, so this
    # passes exactly when all values are finite and non-negative.
    if arr.size and not (arr.min() >= 0.0 and arr.max() < np.inf):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise FieldError(f"{name}: {int(bad.sum())} NaN or infinite values")
        raise FieldError(f"{name}: {int((arr < 0).sum())} negative concentrations")
    arr.setflags(write=False)
    return arr
