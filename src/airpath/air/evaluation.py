"""End-to-end evaluation: estimator skill, incident latency and exposure benefit, as a report.

``airpath evaluate`` calls :func:`evaluate`, which

1. runs the city twin in memory (:mod:`.evaluation_day`): readings are validated,
   map-matched (:mod:`.matching`) and batched; ours (calibrated residual kriging) and the
   baselines learn from the same batches and are scored against the truth (RMSE, MAE, R²
   per pollutant and horizon, the first hour left out as warm-up); incidents are followed
   for the detection latency;
2. routes random trips on the truth, our estimate and the prior at one moment and judges
   every route's dose under the truth (:mod:`.evaluation_exposure`);
3. draws maps and an incident time series (:mod:`.plots`);
4. optionally adds the Beijing real-data evaluation (:mod:`airpath.air.beijing`);

and writes everything to ``report.json`` beside the PNGs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airpath.air.evaluation_day import IDW, OURS, DayResult, Snapshot, run_day
from airpath.air.evaluation_exposure import TRUTH, exposure_benefit, random_trips
from airpath.air.evaluation_report import build_report, finite
from airpath.air.evaluation_scores import IncidentRecord
from airpath.air.matching import MatchTolerance
from airpath.air.plots import plot_edge_map, plot_incident_series
from airpath.errors import InputError
from airpath.network.store import Network, load_network
from airpath.routing.field import PollutionField
from airpath.routing.router import prior_field
from airpath.sensors.simulator import CitySimulator, SimulationConfig
from airpath.sensors.stations import read_stations

__all__ = ["EvaluationConfig", "evaluate"]

Progress = Callable[[str], None]
EXPOSURE_LOCAL_TIME = dt.time(8, 30)
MAP_POLLUTANT = "no2"


@dataclass(frozen=True)
class EvaluationConfig:
    """What to evaluate. Build with :meth:`create`: all defaults and checks live there."""

    start: dt.datetime
    duration_s: float
    seed: int
    batch_s: float
    score_every_s: float
    warm_up_s: float
    horizons_min: tuple[float, ...]
    n_trips: int
    max_detour_pct: float
    n_low_cost: int
    n_mobile: int
    incidents_per_day: float
    mobile_tolerance_m: float
    fixed_tolerance_m: float

    @classmethod
    def create(
        cls,
        *,
        start: dt.datetime | None = None,
        hours: float = 24.0,
        seed: int = 0,
        batch_min: float = 5.0,
        score_every_min: float = 15.0,
        warm_up_min: float = 60.0,
        horizons_min: tuple[float, ...] = (0.0, 15.0, 30.0, 60.0),
        n_trips: int = 200,
        max_detour_pct: float = 10.0,
        n_low_cost: int = 10,
        n_mobile: int = 5,
        incidents_per_day: float = 4.0,
        mobile_tolerance_m: float = 30.0,
        fixed_tolerance_m: float = 100.0,
    ) -> EvaluationConfig:
        start = start or dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        if start.tzinfo is None:
            raise InputError("the start time must be timezone-aware")
        numbers = (hours, batch_min, score_every_min, warm_up_min, max_detour_pct)
        if not all(math.isfinite(v) for v in numbers):
            raise InputError(f"evaluation settings must be finite numbers, got {numbers}")
        if batch_min < 1 or batch_min != int(batch_min):
            raise InputError(f"--batch must be a whole number of minutes >= 1, got {batch_min}")
        if score_every_min < batch_min or score_every_min % batch_min:
            raise InputError(
                f"scores every {score_every_min:g} min: must be a multiple of the "
                f"{batch_min:g} min batch"
            )
        if warm_up_min < 0 or not hours * 60 > warm_up_min + batch_min:
            raise InputError(
                f"--hours {hours:g} leaves nothing to score after the {warm_up_min:g} min warm-up"
            )
        if n_trips < 0 or not 0 <= max_detour_pct <= 1000:
            raise InputError(f"--trips must be >= 0 and the detour 0..1000 %, got {n_trips}")
        if n_low_cost < 0 or n_mobile < 0 or incidents_per_day < 0:
            raise InputError("sensor counts and the incident rate must not be negative")
        hz = tuple(sorted({0.0, *(float(h) for h in horizons_min)}))
        if hz[0] < 0:
            raise InputError(f"horizons must be >= 0 min, got {horizons_min}")
        MatchTolerance(mobile_tolerance_m, fixed_tolerance_m)  # validates
        return cls(
            start=start.astimezone(dt.UTC),
            duration_s=hours * 3600.0,
            seed=int(seed),
            batch_s=batch_min * 60.0,
            score_every_s=score_every_min * 60.0,
            warm_up_s=warm_up_min * 60.0,
            horizons_min=hz,
            n_trips=int(n_trips),
            max_detour_pct=float(max_detour_pct),
            n_low_cost=int(n_low_cost),
            n_mobile=int(n_mobile),
            incidents_per_day=float(incidents_per_day),
            mobile_tolerance_m=float(mobile_tolerance_m),
            fixed_tolerance_m=float(fixed_tolerance_m),
        )

    def simulation(self) -> SimulationConfig:
        return SimulationConfig.create(
            self.start,
            self.duration_s,
            self.seed,
            slice_s=self.batch_s,
            n_low_cost=self.n_low_cost,
            n_mobile=self.n_mobile,
            incident_rate_per_day=self.incidents_per_day,
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat()}


def evaluate(
    network_dir: str | Path,
    report_dir: str | Path,
    config: EvaluationConfig,
    *,
    stations_file: str | Path | None = None,
    beijing_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole evaluation, write ``report.json`` and the PNGs; return the report."""
    say = progress or (lambda _msg: None)
    wall0 = time.perf_counter()
    out = Path(report_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--report {out}: exists and is not a directory")
    run_beijing = _beijing_runner() if beijing_dir is not None else None
    if beijing_dir is not None and not Path(beijing_dir).is_dir():
        raise InputError(f"--beijing {beijing_dir}: not a directory")
    network = load_network(network_dir)
    stations = read_stations(stations_file, network) if stations_file else None
    sim_config = config.simulation()
    out.mkdir(parents=True, exist_ok=True)

    say("stage 1/4: simulated day (validate, map-match, learn, score)")
    day = run_day(
        network,
        sim_config,
        stations=stations,
        horizons_min=config.horizons_min,
        score_every_s=config.score_every_s,
        warm_up_s=config.warm_up_s,
        snapshot_at=_exposure_moment(config),
        tolerance=MatchTolerance(config.mobile_tolerance_m, config.fixed_tolerance_m),
        progress=say,
    )
    wall1 = time.perf_counter()
    if day.snapshot is None:  # unreachable with a validated config; kept as a guard
        raise InputError("the run ended before the exposure moment")
    snap = day.snapshot

    say(f"stage 2/4: exposure benefit, {config.n_trips} trips at {snap.time.isoformat()}")
    trips = random_trips(network, config.n_trips, config.seed)
    exposure = exposure_benefit(
        network,
        _fields(network, snap),
        snap.truth_ugm3[MAP_POLLUTANT],
        trips,
        pollutant=MAP_POLLUTANT,
        max_detour_pct=config.max_detour_pct,
        progress=say,
    )
    wall2 = time.perf_counter()

    say("stage 3/4: plots")
    plots = _plots(network, out, snap, day)
    wall3 = time.perf_counter()

    beijing: dict[str, Any] | None = None
    if run_beijing is not None and beijing_dir is not None:
        say("stage 4/4: Beijing real-data evaluation")
        beijing = dict(run_beijing(Path(beijing_dir), progress=say))
    wall4 = time.perf_counter()

    report = build_report(network, config.to_json(), day, exposure, plots, beijing, stations_file)
    report["runtime_s"] = {
        "total": round(wall4 - wall0, 1),
        "simulated_day": round(wall1 - wall0, 1),
        "simulated_day_parts": day.runtime_s,
        "exposure_benefit": round(wall2 - wall1, 1),
        "plots": round(wall3 - wall2, 1),
        "beijing": round(wall4 - wall3, 1),
    }
    (out / "report.json").write_text(json.dumps(finite(report), indent=2, ensure_ascii=False))
    return report


def _exposure_moment(config: EvaluationConfig) -> Callable[[CitySimulator], dt.datetime]:
    """08:30 local on the first simulated day with it after the warm-up, else mid-run."""

    def pick(sim: CitySimulator) -> dt.datetime:
        first = config.start + dt.timedelta(seconds=config.warm_up_s)
        last = config.start + dt.timedelta(seconds=config.duration_s - config.batch_s)
        local = config.start.astimezone(sim.tz)
        for day in range(2):
            date = local.date() + dt.timedelta(days=day)
            moment = dt.datetime.combine(date, EXPOSURE_LOCAL_TIME, tzinfo=sim.tz)
            if first <= moment <= last:
                return moment.astimezone(dt.UTC)
        mid_s = max(config.warm_up_s, 0.5 * config.duration_s)
        return config.start + dt.timedelta(seconds=mid_s)

    return pick


def _fields(network: Network, snap: Snapshot) -> dict[str, PollutionField]:
    n = network.n_edges
    return {
        TRUTH: PollutionField.create("truth", snap.time, snap.truth_ugm3, n_edges=n),
        OURS: PollutionField.create("ours", snap.time, snap.estimate_ugm3[OURS], n_edges=n),
        "prior": prior_field(network),
    }


def _plots(network: Network, out: Path, snap: Snapshot, day: DayResult) -> list[str]:
    p = MAP_POLLUTANT
    truth = snap.truth_ugm3[p]
    ours = snap.estimate_ugm3[OURS][p]
    idw = snap.estimate_ugm3[IDW][p]
    when = snap.time.strftime("%Y-%m-%d %H:%M UTC")
    lo, hi = (float(v) for v in np.percentile(np.concatenate([truth, ours]), [2.0, 98.0]))
    unit = f"{p.upper()} (µg/m³)"
    maps = (
        ("map_truth_no2.png", truth, f"Truth, {when}", False),
        ("map_estimate_no2.png", ours, f"Our estimate, {when}", False),
        ("map_error_no2.png", ours - truth, f"Our error (estimate − truth), {when}", True),
        ("map_error_idw_no2.png", idw - truth, f"IDW error (estimate − truth), {when}", True),
    )
    files = [
        plot_edge_map(
            network,
            values,
            out / name,
            title=title,
            label=unit,
            diverging=diverging,
            limits=None if diverging else (lo, hi),
        )
        for name, values, title, diverging in maps
    ]
    rec = _incident_to_plot(day.incidents.records)
    if rec is not None:
        files.append(_plot_incident(rec, out / "incident_timeseries_no2.png"))
    return [f.name for f in files]


def _incident_to_plot(records: list[IncidentRecord]) -> IncidentRecord | None:
    """The first incident with a reading on it, else the longest one followed."""
    followed = [r for r in records if r.times]
    observed = [r for r in followed if r.first_observed_batch is not None]
    if observed:
        return observed[0]
    return max(followed, key=lambda r: r.incident.duration_min, default=None)


def _plot_incident(rec: IncidentRecord, path: Path) -> Path:
    index = {int(e): i for i, e in enumerate(rec.edges)}
    picks = [e for e in rec.observed_edges if e in index][:3]
    for e in rec.edges.tolist():  # unobserved incident edges fill the remaining panels
        if len(picks) >= 3:
            break
        if e not in picks:
            picks.append(int(e))
    cols = [index[e] for e in picks]
    series = {
        "truth": np.stack(rec.truth_ugm3)[:, cols],
        "ours": np.stack(rec.ours_ugm3)[:, cols],
        "inverse_distance": np.stack(rec.idw_ugm3)[:, cols],
    }
    inc = rec.incident
    return plot_incident_series(
        rec.times,
        series,
        path,
        edge_ids=picks,
        incident_span=(inc.start, inc.end),
        first_observed=rec.first_observed_at,
        title=f"Incident ×{inc.factor:.2f} NO2 ({inc.kind}), {len(rec.edges)} edges",
    )


def _beijing_runner() -> Callable[..., dict[str, Any]]:
    """``evaluate_beijing``, imported only when asked for (it lives in its own module)."""
    try:
        from airpath.air.beijing import evaluate_beijing
    except ImportError as exc:
        raise InputError(
            f"--beijing: the Beijing evaluation (airpath.air.beijing) is not available: {exc}"
        ) from None
    return evaluate_beijing
