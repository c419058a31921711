"""Scores of the simulated-day evaluation: error metrics and incident detection latency.

Metrics pool every scored edge and time: with ``ŷ`` an estimate and ``y`` the truth on
one edge at one time (µg/m³), over all ``n`` such pairs of one (estimator, pollutant,
horizon)::

    RMSE = sqrt(Σ (ŷ - y)² / n)      MAE = Σ |ŷ - y| / n      R² = 1 - Σ (ŷ - y)² / Σ (y - ȳ)²

with ``ȳ`` the pooled mean of the truth. Edges count equally whatever their length.

Incident latency, per incident, in batches: from the first batch holding a matched reading
on one of its edges while it is active, to the first batch (that one or later, until the
incident ends) whose horizon-0 NO2 estimate, averaged over the incident's edges, exceeds
``DETECTION_RATIO`` × the same average at the last batch before the incident began (the
level the estimate stood at without the incident). 0 means the batch with the first
reading already shows it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airpath.air.observations import FloatArray, IntArray, ObservationBatch
from airpath.sensors.incidents import Incident

DETECTION_RATIO = 1.2
DETECTION_POLLUTANT = "no2"


@dataclass
class _Sums:
    n: int = 0
    sse: float = 0.0
    sae: float = 0.0
    sum_y: float = 0.0
    sum_y2: float = 0.0

    def add(self, estimate: FloatArray, truth: FloatArray) -> None:
        err = estimate - truth
        self.n += len(truth)
        self.sse += float(err @ err)
        self.sae += float(np.abs(err).sum())
        self.sum_y += float(truth.sum())
        self.sum_y2 += float(truth @ truth)

    def metrics(self) -> dict[str, float]:
        if self.n == 0:
            return {"n": 0, "rmse_ugm3": math.nan, "mae_ugm3": math.nan, "r2": math.nan}
        sst = self.sum_y2 - self.sum_y**2 / self.n
        return {
            "n": self.n,
            "rmse_ugm3": math.sqrt(self.sse / self.n),
            "mae_ugm3": self.sae / self.n,
            "r2": 1.0 - self.sse / sst if sst > 0 else math.nan,
        }


class ScoreTable:
    """RMSE, MAE and R² per (estimator, pollutant, horizon), accumulated over time."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, float], _Sums] = defaultdict(_Sums)

    def add(
        self,
        estimator: str,
        pollutant: str,
        horizon_min: float,
        estimate: FloatArray,
        truth: FloatArray,
    ) -> None:
        self._sums[(estimator, pollutant, float(horizon_min))].add(estimate, truth)

    def metric(self, estimator: str, pollutant: str, horizon_min: float) -> dict[str, float]:
        return self._sums[(estimator, pollutant, float(horizon_min))].metrics()

    def to_json(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """``{estimator: {pollutant: {horizon_min: metrics}}}``; horizons as strings."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for (est, pol, h), sums in sorted(self._sums.items()):
            out.setdefault(est, {}).setdefault(pol, {})[f"{h:g}"] = sums.metrics()
        return out

    def reduction_pct(self, ours: str, baseline: str) -> dict[str, dict[str, float]]:
        """``100 × (1 - RMSE_ours / RMSE_baseline)`` per pollutant and horizon."""
        out: dict[str, dict[str, float]] = {}
        for est, pol, h in sorted(self._sums):
            if est != ours:
                continue
            mine = self.metric(ours, pol, h)["rmse_ugm3"]
            base = self.metric(baseline, pol, h)["rmse_ugm3"]
            out.setdefault(pol, {})[f"{h:g}"] = (
                100.0 * (1.0 - mine / base) if base > 0 else math.nan
            )
        return out


@dataclass
class IncidentRecord:
    """What the evaluation saw of one incident: first reading, estimates over time."""

    incident: Incident
    edges: IntArray
    first_observed_batch: int | None = None
    first_observed_at: dt.datetime | None = None
    observed_edges: list[int] = field(default_factory=list)
    baseline_ugm3: float | None = None  # mean estimate on the edges just before the start
    times: list[dt.datetime] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    truth_ugm3: list[FloatArray] = field(default_factory=list)  # per time, over ``edges``
    ours_ugm3: list[FloatArray] = field(default_factory=list)
    idw_ugm3: list[FloatArray] = field(default_factory=list)

    def latency_batches(self) -> int | None:
        if self.first_observed_batch is None or not self.baseline_ugm3:
            return None
        threshold = DETECTION_RATIO * self.baseline_ugm3
        for b, t, est in zip(self.batches, self.times, self.ours_ugm3, strict=True):
            in_window = b >= self.first_observed_batch and t <= self.incident.end + _GRACE
            if in_window and float(est.mean()) > threshold:
                return b - self.first_observed_batch
        return None

    def to_json(self) -> dict[str, Any]:
        inc = self.incident
        latency = self.latency_batches()
        return {
            "start": inc.start.isoformat(),
            "end": inc.end.isoformat(),
            "factor_no2": inc.factor,
            "n_edges": len(self.edges),
            "observed": self.first_observed_batch is not None,
            "first_observed_at": (
                self.first_observed_at.isoformat() if self.first_observed_at else None
            ),
            "n_observed_edges": len(self.observed_edges),
            "baseline_estimate_ugm3": self.baseline_ugm3,
            "threshold_ugm3": (
                DETECTION_RATIO * self.baseline_ugm3 if self.baseline_ugm3 else None
            ),
            "peak_estimate_ugm3": max((float(e.mean()) for e in self.ours_ugm3), default=None),
            "detected": latency is not None,
            "latency_batches": latency,
        }


_GRACE = dt.timedelta(minutes=1)  # a batch ending right at the incident's end still counts


class IncidentTracker:
    """Follows every incident of a run: when it is first observed, what we estimate."""

    def __init__(self, incidents: tuple[Incident, ...], batch_s: float) -> None:
        self.batch = dt.timedelta(seconds=batch_s)
        self.records = [
            IncidentRecord(inc, np.asarray(inc.edges, dtype=np.int64)) for inc in incidents
        ]

    def watching(self, t: dt.datetime) -> list[IncidentRecord]:
        """Incidents whose window (one batch before the start to 30 min after the end)
        holds the batch time ``t``."""
        after = dt.timedelta(minutes=30)
        return [
            r for r in self.records if r.incident.start - self.batch <= t <= r.incident.end + after
        ]

    def observe(self, batch_index: int, t: dt.datetime, batch: ObservationBatch) -> None:
        """Note matched readings on incident edges taken while the incident was active."""
        if len(batch) == 0:
            return
        start_s = np.asarray(batch.time_s)
        for rec in self.records:
            inc = rec.incident
            active = (start_s >= inc.start.timestamp()) & (start_s < inc.end.timestamp())
            hit = active & np.isin(batch.edge_id, rec.edges)
            if not hit.any():
                continue
            if rec.first_observed_batch is None:
                rec.first_observed_batch = batch_index
                rec.first_observed_at = t
            seen = set(rec.observed_edges)
            rec.observed_edges += [int(e) for e in np.unique(batch.edge_id[hit]) if e not in seen]

    def record(
        self,
        rec: IncidentRecord,
        batch_index: int,
        t: dt.datetime,
        truth_ugm3: FloatArray,
        ours_ugm3: FloatArray,
        idw_ugm3: FloatArray,
    ) -> None:
        """Store the NO2 truth and estimates (full edge arrays) on the incident's edges."""
        e = rec.edges
        if t < rec.incident.start:
            rec.baseline_ugm3 = float(ours_ugm3[e].mean())
        rec.times.append(t)
        rec.batches.append(batch_index)
        rec.truth_ugm3.append(truth_ugm3[e].copy())
        rec.ours_ugm3.append(ours_ugm3[e].copy())
        rec.idw_ugm3.append(idw_ugm3[e].copy())

    def summary(self) -> dict[str, Any]:
        latencies = [r.latency_batches() for r in self.records]
        observed = [r for r in self.records if r.first_observed_batch is not None]
        detected = [x for x in latencies if x is not None]
        return {
            "rule": (
                f"batches from the first matched reading on an incident edge until the mean "
                f"horizon-0 {DETECTION_POLLUTANT.upper()} estimate over the incident edges "
                f"exceeds {DETECTION_RATIO} x its value at the last batch before the incident"
            ),
            "n_incidents": len(self.records),
            "n_observed": len(observed),
            "n_detected": len(detected),
            "median_latency_batches": float(np.median(detected)) if detected else None,
            "max_latency_batches": max(detected) if detected else None,
            "within_two_batches": sum(x <= 2 for x in detected),
            "incidents": [r.to_json() for r in self.records],
        }
