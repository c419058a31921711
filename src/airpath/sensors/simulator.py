"""The city simulator: a seeded digital twin producing truth and sensor readings.

Drive it in memory, slice by slice::

    sim = CitySimulator(network, SimulationConfig.create(start, duration_s=3600, seed=1))
    for piece in sim:                     # or sim.step() until sim.done
        piece.truth_ugm3["no2"]           # (n_edges,) truth at piece.start
        piece.readings                    # list[Reading] with time in [start, end)

Time advances in ticks of ``tick_s`` (60 s); truth is constant within a tick. Every
random stream is spawned from one ``numpy.random.SeedSequence(seed)`` in a fixed order,
one stream per sensor, so the same seed gives the same run.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.air.schema import Pollutant, Reading, SensorKind
from airpath.errors import SimulationError
from airpath.network.store import Network
from airpath.routing.field import PollutionField
from airpath.sensors import truth as truth_mod
from airpath.sensors.clock import format_time
from airpath.sensors.fleet import (
    LowCostSampler,
    LowCostSensor,
    MobileSampler,
    _EdgeShape,
    make_low_cost,
    make_mobile,
)
from airpath.sensors.incidents import Incident, project_m, random_incidents
from airpath.sensors.stations import NOISE_FLOOR_UGM3, NOISE_REL, StationSite, default_stations
from airpath.sensors.truth import TruthModel

FloatArray = npt.NDArray[np.float64]

HOUR_S = 3600.0
# Cities the default time zone knows by bounding box (lon/lat); elsewhere: solar offset.
KNOWN_ZONES = (
    ("Europe/Madrid", (1.9, 41.2, 2.4, 41.6)),  # Barcelona
    ("Europe/Helsinki", (24.5, 60.0, 25.4, 60.4)),
)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Build with :meth:`create`, which applies defaults and validates."""

    start: dt.datetime
    duration_s: float
    seed: int = 0
    slice_s: float = 60.0
    tick_s: float = 60.0
    n_low_cost: int = 10
    n_mobile: int = 5
    incident_rate_per_day: float = 4.0
    timezone: str | None = None  # IANA name for the diurnal profile; None: from the bbox

    @classmethod
    def create(
        cls,
        start: dt.datetime,
        duration_s: float,
        seed: int = 0,
        *,
        slice_s: float = 60.0,
        n_low_cost: int = 10,
        n_mobile: int = 5,
        incident_rate_per_day: float = 4.0,
        timezone: str | None = None,
    ) -> SimulationConfig:
        if start.tzinfo is None:
            raise SimulationError("start must be timezone-aware (e.g. 2026-05-01T00:00Z)")
        if not duration_s > 0:
            raise SimulationError(f"duration must be positive, got {duration_s} s")
        if slice_s < 60 or slice_s % 60:
            raise SimulationError(f"slice must be a whole number of minutes, got {slice_s} s")
        if n_low_cost < 0 or n_mobile < 0 or incident_rate_per_day < 0:
            raise SimulationError("sensor counts and the incident rate must not be negative")
        if timezone is not None:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise SimulationError(f"unknown time zone {timezone!r}") from None
        return cls(
            start=start.astimezone(dt.UTC),
            duration_s=float(duration_s),
            seed=int(seed),
            slice_s=float(slice_s),
            tick_s=60.0,
            n_low_cost=int(n_low_cost),
            n_mobile=int(n_mobile),
            incident_rate_per_day=float(incident_rate_per_day),
            timezone=timezone,
        )

    @property
    def n_slices(self) -> int:
        return int(np.ceil(self.duration_s / self.slice_s))


@dataclass(frozen=True)
class SimSlice:
    """One slice of a run: truth at ``start`` and the readings in ``[start, end)``."""

    index: int
    start: dt.datetime
    end: dt.datetime
    truth_ugm3: dict[str, FloatArray]
    readings: list[Reading]


def default_timezone(network: Network) -> dt.tzinfo:
    """The city's zone when known, else the solar offset ``round(lon / 15)`` hours."""
    lon0, lat0, lon1, lat1 = (float(v) for v in network.manifest["bbox"])
    lon, lat = 0.5 * (lon0 + lon1), 0.5 * (lat0 + lat1)
    for name, (a, b, c, d) in KNOWN_ZONES:
        if a <= lon <= c and b <= lat <= d:
            return zoneinfo.ZoneInfo(name)
    return dt.timezone(dt.timedelta(hours=round(lon / 15.0)))


def low_cost_sites(network: Network, config: SimulationConfig) -> list[LowCostSensor]:
    """Where a simulation of ``config`` puts its low-cost sensors, without running it
    (the same random streams as :class:`CitySimulator`): e.g. to stage an incident that a
    sensor will see."""
    s_lc = np.random.SeedSequence(config.seed).spawn(5)[2]
    lc_place, _ = s_lc.spawn(2)
    return make_low_cost(
        network, np.random.default_rng(lc_place), config.n_low_cost, config.duration_s
    )


class CitySimulator:
    """A seeded twin of one city: truth per edge and what its sensors report."""

    def __init__(
        self,
        network: Network,
        config: SimulationConfig,
        *,
        stations: Sequence[StationSite] | None = None,
        incidents: Sequence[Incident] | None = None,
    ) -> None:
        self.network = network
        self.config = config
        self.tz = (
            zoneinfo.ZoneInfo(config.timezone) if config.timezone else default_timezone(network)
        )
        root = np.random.SeedSequence(config.seed)
        s_truth, s_inc, s_lc, s_mob, s_ref = root.spawn(5)
        n_ticks = int(np.ceil(config.duration_s / config.tick_s))
        if incidents is None:
            incidents = random_incidents(
                network,
                np.random.default_rng(s_inc),
                config.start,
                config.duration_s,
                config.incident_rate_per_day,
            )
        self.incidents = tuple(incidents)
        self.truth = TruthModel.create(
            network,
            np.random.default_rng(s_truth),
            config.start,
            config.tick_s,
            n_ticks,
            self.tz,
            self.incidents,
        )
        self.pollutants = self.truth.pollutants
        self.stations = tuple(default_stations(network) if stations is None else stations)
        rows = {p: i for i, p in enumerate(self.pollutants)}

        _, lc_run = s_lc.spawn(2)
        self.low_cost = low_cost_sites(network, config)
        self._lc = [
            LowCostSampler(
                spec, np.random.default_rng(ss), config.start, [rows[p] for p in spec.pollutants]
            )
            for spec, ss in zip(self.low_cost, lc_run.spawn(len(self.low_cost)), strict=True)
        ]
        mob_place, mob_run = s_mob.spawn(2)
        self.mobile = make_mobile(network, np.random.default_rng(mob_place), config.n_mobile)
        lat0 = float(np.mean(network.node_lat))
        node_xy = project_m(
            np.asarray(network.node_lon, dtype=np.float64),
            np.asarray(network.node_lat, dtype=np.float64),
            lat0,
        )
        shapes: dict[int, _EdgeShape] = {}
        self._mob = [
            MobileSampler(
                spec,
                network,
                np.random.default_rng(ss),
                config.start,
                [rows[p] for p in spec.pollutants],
                node_xy,
                shapes,
            )
            for spec, ss in zip(self.mobile, mob_run.spawn(len(self.mobile)), strict=True)
        ]
        self._ref_rng = np.random.default_rng(s_ref)
        self._ref_rows = [[rows[p] for p in st.pollutants] for st in self.stations]
        self._ref_sum = np.zeros((len(self.stations), len(self.pollutants)))
        self._ref_ticks = 0
        self._pending: list[Reading] = []
        self._next_slice = 0

    # -- truth, a pure function of time ------------------------------------------------

    def truth_at(self, t: dt.datetime) -> dict[str, FloatArray]:
        """Truth in µg/m³ per pollutant, shape ``(n_edges,)``, at time ``t``."""
        arr = self.truth.at(self.truth.tick_of(t))
        return {p: arr[i] for i, p in enumerate(self.pollutants)}

    def field_at(self, t: dt.datetime) -> PollutionField:
        """The truth at ``t`` as a :class:`PollutionField` (horizon 0 only)."""
        return PollutionField.create(
            f"truth-{self.config.seed}-{format_time(t)}",
            t,
            self.truth_at(t),
            n_edges=self.network.n_edges,
        )

    # -- stepping ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._next_slice >= self.config.n_slices

    def __iter__(self) -> Iterator[SimSlice]:
        while not self.done:
            yield self.step()

    def step(self) -> SimSlice:
        """Simulate the next slice. Raises :class:`SimulationError` after the last one."""
        if self.done:
            raise SimulationError("the simulation has already reached its end")
        cfg, i = self.config, self._next_slice
        t0_s = i * cfg.slice_s
        t1_s = min(t0_s + cfg.slice_s, cfg.duration_s)
        readings, self._pending = self._pending, []
        first_truth: FloatArray | None = None
        k = int(t0_s // cfg.tick_s)
        while k * cfg.tick_s < t1_s:
            a_s, b_s = k * cfg.tick_s, min((k + 1) * cfg.tick_s, cfg.duration_s)
            truth = self.truth.at(k)
            if first_truth is None:
                first_truth = truth
            for lc in self._lc:
                readings += lc.sample(a_s, b_s, truth)
            for mob in self._mob:
                readings += mob.sample(a_s, b_s, truth)
            readings += self._reference(truth, b_s)
            k += 1
        self._next_slice += 1
        end = cfg.start + dt.timedelta(seconds=t1_s)
        self._pending = [r for r in readings if r.time >= end]
        now = sorted((r for r in readings if r.time < end), key=lambda r: r.time)
        assert first_truth is not None
        return SimSlice(
            index=i,
            start=cfg.start + dt.timedelta(seconds=t0_s),
            end=end,
            truth_ugm3={p: first_truth[j] for j, p in enumerate(self.pollutants)},
            readings=now,
        )

    def _reference(self, truth: FloatArray, tick_end_s: float) -> list[Reading]:
        for j, st in enumerate(self.stations):
            self._ref_sum[j] += truth[:, st.edge]
        self._ref_ticks += 1
        end = self.config.start + dt.timedelta(seconds=tick_end_s)
        if end.minute or end.second or end.microsecond:
            return []
        full = self._ref_ticks * self.config.tick_s >= HOUR_S
        mean = self._ref_sum / max(self._ref_ticks, 1)
        self._ref_sum[:] = 0.0
        self._ref_ticks = 0
        if not full:
            return []  # a partial first hour: stations publish complete hours only
        out = []
        for j, st in enumerate(self.stations):
            for p in st.pollutants:
                m = float(mean[j, self.pollutants.index(p)])
                sd = max(NOISE_FLOOR_UGM3, NOISE_REL * m)
                v = max(m + sd * float(self._ref_rng.standard_normal()), 0.0)
                out.append(
                    Reading(
                        st.sensor_id,
                        SensorKind.REFERENCE,
                        st.lat,
                        st.lon,
                        end,
                        Pollutant(p),
                        round(v, 3),
                    )
                )
        return out

    # -- description -------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """Everything needed to judge an estimator against this run (JSON-ready)."""
        cfg = self.config
        return {
            "seed": cfg.seed,
            "start": format_time(cfg.start),
            "duration_s": cfg.duration_s,
            "slice_s": cfg.slice_s,
            "tick_s": cfg.tick_s,
            "timezone": str(self.tz),
            "network": {
                "path": str(self.network.path),
                "counts": dict(self.network.manifest["counts"]),
                "bbox": list(self.network.manifest["bbox"]),
            },
            "pollutants": list(self.pollutants),
            "model": {
                "weather_tau_h": truth_mod.WEATHER_TAU_H,
                "weather_sigma": truth_mod.WEATHER_SIGMA,
                "weather_corr": {f"{a}-{b}": c for (a, b), c in truth_mod.WEATHER_CORR.items()},
                "local_sigma": truth_mod.LOCAL_SIGMA,
                "local_corr": truth_mod.LOCAL_CORR,
                "local_length_scale_m": self.truth.length_scale_m,
                "local_period_h": list(truth_mod.LOCAL_PERIOD_H),
                "n_features": truth_mod.N_FEATURES,
            },
            "sensors": [s.to_json() for s in self.stations]
            + [s.to_json() for s in self.low_cost]
            + [s.to_json() for s in self.mobile],
            "incidents": [inc.to_json() for inc in self.incidents],
            "config": {k: v for k, v in asdict(cfg).items() if k != "start"},
        }
