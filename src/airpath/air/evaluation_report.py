"""The evaluation's ``report.json``: every figure, the targets and whether they are met.

Targets: ours at least ``TARGET_IDW_REDUCTION_PCT`` % lower RMSE than inverse-distance
weighting of the readings at horizon 0; every observed incident detected within
``TARGET_LATENCY_BATCHES`` batches; our estimate realising at least
``TARGET_SHARE_REALISED`` of the dose reduction routing on the truth achieves.

The reduction against the stronger prior-corrected inverse-distance weighting
(``rmse_reduction_vs_prior_idw_pct``) is reported beside it, without a target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from airpath.air.evaluation_day import IDW, OURS, PRIOR_IDW, DayResult
from airpath.network.store import Network

__all__ = ["build_report", "finite"]

TARGET_IDW_REDUCTION_PCT = 30.0
TARGET_LATENCY_BATCHES = 2
TARGET_SHARE_REALISED = 0.8


def build_report(
    network: Network,
    config: dict[str, Any],
    day: DayResult,
    exposure: dict[str, Any],
    plots: list[str],
    beijing: dict[str, Any] | None,
    stations_file: str | Path | None,
) -> dict[str, Any]:
    sim = day.simulator
    assert sim is not None
    reduction = day.scores.reduction_pct(OURS, IDW)
    incidents = day.incidents.summary()
    latencies = [i["latency_batches"] for i in incidents["incidents"] if i["detected"]]
    share = exposure["share_realised"].get(OURS, {})
    return {
        "network": {
            "path": str(network.path),
            "edges": network.n_edges,
            "bbox": list(network.manifest["bbox"]),
            "stations_file": str(stations_file) if stations_file else None,
            "n_reference_stations": len(sim.stations),
        },
        "config": config,
        "simulation": {
            "timezone": str(sim.tz),
            "n_low_cost": len(sim.low_cost),
            "n_mobile": len(sim.mobile),
            "n_incidents": len(sim.incidents),
        },
        "warm_up": (
            f"the first {config['warm_up_s'] / 60:g} min are not scored (estimators start "
            "from nothing and reference stations publish hourly)"
        ),
        "scored_times": day.scored_times,
        "score_every_min": config["score_every_s"] / 60,
        "readings": {**day.counts, "rejected": day.rejected},
        "scores": day.scores.to_json(),
        "rmse_reduction_vs_idw_pct": reduction,
        "rmse_reduction_vs_prior_idw_pct": day.scores.reduction_pct(OURS, PRIOR_IDW),
        "incident_detection": incidents,
        "exposure_benefit": exposure,
        "plots": plots,
        "beijing": beijing,
        "targets": {
            "rmse_vs_idw_h0": {
                "target_pct": TARGET_IDW_REDUCTION_PCT,
                "achieved_pct": {p: v.get("0") for p, v in reduction.items()},
                "met": {
                    p: (v.get("0") or -math.inf) >= TARGET_IDW_REDUCTION_PCT
                    for p, v in reduction.items()
                },
            },
            "incident_latency": {
                "target_batches": TARGET_LATENCY_BATCHES,
                "measured": len(latencies),
                "n_observed": incidents["n_observed"],
                # None: no incident was observed, so the latency could not be measured.
                "met": (
                    None
                    if incidents["n_observed"] == 0
                    else len(latencies) == incidents["n_observed"]
                    and max(latencies) <= TARGET_LATENCY_BATCHES
                ),
            },
            "share_realised": {
                "target": TARGET_SHARE_REALISED,
                "achieved": share,
                "met": {
                    prof: v["share_of_median_reduction"] >= TARGET_SHARE_REALISED
                    for prof, v in share.items()
                },
            },
        },
    }


def finite(obj: Any) -> Any:
    """NaN and infinities as ``null``: strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.generic):
        return finite(obj.item())
    return obj
