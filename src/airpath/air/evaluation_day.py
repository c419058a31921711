"""The simulated day: run the city twin in memory and score every estimator against truth.

Every batch (``batch_s`` of simulated time) the slice's readings are validated, matched to
edges and fed, as one :class:`ObservationBatch`, to each estimator. Every
``score_every_s`` after the warm-up each estimator predicts at the batch time ``t`` for
every horizon ``h`` and is scored against ``truth_at(t + h)`` on all edges (horizons
past the end of the run are skipped). During incidents ours and IDW also predict at
every batch, for the detection latency and the time-series plot.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from airpath.air.calibration import CalibratedEstimator, SensorCalibrator
from airpath.air.estimate import (
    EdgeSpace,
    Estimator,
    FieldEstimate,
    InverseDistance,
    NearestSensor,
    PriorOnly,
)
from airpath.air.evaluation_scores import (
    DETECTION_POLLUTANT,
    IncidentTracker,
    ScoreTable,
)
from airpath.air.kriging import ResidualKriging
from airpath.air.matching import EdgeMatcher, MatchTolerance
from airpath.air.observations import FloatArray
from airpath.air.readings import validate
from airpath.air.rules import Area, RecentKeys
from airpath.network.store import Network
from airpath.sensors.incidents import Incident, connected_edges
from airpath.sensors.simulator import CitySimulator, SimulationConfig
from airpath.sensors.stations import StationSite

OURS = "ours"
IDW = "inverse_distance"
PRIOR_IDW = "prior_inverse_distance"
ESTIMATORS = (OURS, "prior_only", "nearest_sensor", IDW, PRIOR_IDW)
SENSED_INCIDENT_LENGTH_M = 500.0  # street length of the incident placed at a sensor

Progress = Callable[[str], None]


def make_estimators(space: EdgeSpace) -> dict[str, Estimator]:
    """Ours (residual kriging fed low-cost readings calibrated against co-located
    references where there are any, else against the network's unbiased readings) and
    the baselines (see :mod:`airpath.air.estimate`), freshly built."""
    return {
        OURS: CalibratedEstimator(
            ResidualKriging(space), SensorCalibrator(space, pass_uncalibrated=True)
        ),
        "prior_only": PriorOnly(space),
        "nearest_sensor": NearestSensor(space),
        IDW: InverseDistance(space),
        PRIOR_IDW: InverseDistance(space, relative_to_prior=True),
    }


@dataclass
class Snapshot:
    """Truth and estimates (horizon 0, µg/m³ per pollutant) at one batch time."""

    time: dt.datetime
    truth_ugm3: dict[str, FloatArray]
    estimate_ugm3: dict[str, dict[str, FloatArray]]  # estimator → pollutant → values


@dataclass
class DayResult:
    scores: ScoreTable
    incidents: IncidentTracker
    snapshot: Snapshot | None
    counts: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    scored_times: int = 0
    runtime_s: dict[str, float] = field(default_factory=dict)
    simulator: CitySimulator | None = None


def run_day(
    network: Network,
    config: SimulationConfig,
    *,
    stations: Sequence[StationSite] | None,
    horizons_min: Sequence[float],
    score_every_s: float,
    warm_up_s: float,
    snapshot_at: Callable[[CitySimulator], dt.datetime],
    tolerance: MatchTolerance | None = None,
    progress: Progress | None = None,
    sensed_incident: bool = True,
) -> DayResult:
    """Simulate ``config`` on ``network`` and score the estimators of :data:`ESTIMATORS`.

    ``snapshot_at`` picks, from the built simulator, the moment whose truth and estimates
    are kept for the exposure benefit and the maps (the first batch at or after it).
    """
    sim = CitySimulator(network, config, stations=stations)
    if sensed_incident and sim.low_cost:
        # Random incidents rarely cross the few sensors of a run, which leaves the
        # detection latency unmeasured; one more incident starts at a low-cost sensor's
        # street (the simulator's random streams are independent, so adding an incident
        # leaves every sensor where it was).
        sensor = sim.low_cost[0]
        extra = Incident(
            start=config.start + dt.timedelta(seconds=0.4 * config.duration_s),
            duration_min=min(60.0, config.duration_s / 120.0),
            factor=2.5,
            edges=connected_edges(network, sensor.edge, SENSED_INCIDENT_LENGTH_M),
            kind="sensed_traffic_jam",
        )
        sim = CitySimulator(network, config, stations=stations, incidents=(*sim.incidents, extra))
    space = EdgeSpace.from_network(network)
    estimators = make_estimators(space)
    matcher = EdgeMatcher(network, tolerance)
    bbox = tuple(float(v) for v in network.manifest["bbox"])
    area = Area(bbox[0], bbox[1], bbox[2], bbox[3])
    seen = RecentKeys()
    tracker = IncidentTracker(sim.incidents, config.slice_s)
    scores = ScoreTable()
    want_snapshot = snapshot_at(sim)
    end = config.start + dt.timedelta(seconds=config.duration_s)
    result = DayResult(scores, tracker, None, simulator=sim)
    counts: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    clock: dict[str, float] = {"validate_match_s": 0.0, "learn_s": 0.0, "predict_score_s": 0.0}
    next_score = config.start + dt.timedelta(seconds=warm_up_s)
    last_pct = -10
    for piece in sim:
        t0 = time.perf_counter()
        t = piece.end
        checked = validate(piece.readings, now=t, area=area, seen=seen)
        matched = matcher.match(checked.valid)
        counts["readings"] += checked.n_in
        counts["valid"] += len(checked.valid)
        counts["matched"] += len(matched.batch)
        for reason, n in checked.counts.items():
            rejected[f"validation:{reason.value}"] += n
        for why, n in matched.rejected.items():
            rejected[f"matching:{why.value}"] += n
        t1 = time.perf_counter()
        for est in estimators.values():
            est.learn(matched.batch)
        tracker.observe(piece.index, t, matched.batch)
        t2 = time.perf_counter()
        scoring = t >= next_score and t < end
        watching = tracker.watching(t)
        snapshot_now = result.snapshot is None and t >= want_snapshot
        if scoring or snapshot_now:
            _score(estimators, sim, scores, t, end, horizons_min, result, scoring, snapshot_now)
            if scoring:
                next_score += dt.timedelta(seconds=score_every_s)
                result.scored_times += 1
        if watching:
            truth = sim.truth_at(t)[DETECTION_POLLUTANT]
            ours = estimators[OURS].predict(t, [0.0]).pollutants[DETECTION_POLLUTANT]
            idw = estimators[IDW].predict(t, [0.0]).pollutants[DETECTION_POLLUTANT]
            for rec in watching:
                tracker.record(rec, piece.index, t, truth, ours.mean_ugm3[0], idw.mean_ugm3[0])
        t3 = time.perf_counter()
        clock["validate_match_s"] += t1 - t0
        clock["learn_s"] += t2 - t1
        clock["predict_score_s"] += t3 - t2
        pct = int(100 * (piece.index + 1) / config.n_slices)
        if progress is not None and pct >= last_pct + 10:
            last_pct = pct - pct % 10
            progress(f"simulated day: {pct}% of {config.duration_s / 3600:g} h")
    result.counts = dict(counts)
    result.rejected = dict(rejected)
    result.runtime_s = {k: round(v, 2) for k, v in clock.items()}
    return result


def _score(
    estimators: Mapping[str, Estimator],
    sim: CitySimulator,
    scores: ScoreTable,
    t: dt.datetime,
    end: dt.datetime,
    horizons_min: Sequence[float],
    result: DayResult,
    scoring: bool,
    snapshot_now: bool,
) -> None:
    hz = [float(h) for h in horizons_min if t + dt.timedelta(minutes=h) < end]
    if not hz or hz[0] != 0.0:
        hz = [0.0, *[h for h in hz if h != 0.0]]
    truths = {h: sim.truth_at(t + dt.timedelta(minutes=h)) for h in hz}
    estimates: dict[str, FieldEstimate] = {
        name: est.predict(t, hz) for name, est in estimators.items()
    }
    if scoring:
        for name, fe in estimates.items():
            for pol, pe in fe.pollutants.items():
                for i, h in enumerate(hz):
                    scores.add(name, pol, h, pe.mean_ugm3[i], truths[h][pol])
    if snapshot_now:
        result.snapshot = Snapshot(
            t,
            {p: v.copy() for p, v in truths[0.0].items()},
            {
                name: {p: pe.mean_ugm3[0].copy() for p, pe in fe.pollutants.items()}
                for name, fe in estimates.items()
            },
        )
