"""Low-cost fixed sensors and mobile (bike) sensors: their true errors and their readings.

Low-cost fixed sensor, pollutant ``p``, sample at time ``t`` (every 60–120 s)::

    value = gain_p × truth + offset_p + drift_p × days_since_start + N(0, noise_p²)

Gains 0.8–1.3 and offsets of a few µg/m³ vary from unit to unit, as colocation studies
of commercial low-cost platforms report (Castell et al. 2017, *Environment
International* 99:293–302); the drift stands for the slow, temperature- and
ageing-driven baseline change of electrochemical cells. Values are clipped at 0. A
sensor drops single samples (2 %) and has outages (Poisson, 1 per day, 10–60 min).

Mobile sensor: a rider moving along the network at the edge's cycling speed (from
``edge_duration_s``) × a personal factor, heading for a random target node and picking
a new one on arrival (a randomised greedy walk, no U-turns unless at a dead end, shy of
edges where the bike must be pushed); every
5 s it reports ``truth × (1 + N(0, 0.05²)) + N(0, noise_p²)`` with a GPS position error of
``N(0, 2 m)`` per axis, its speed and heading.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.air.schema import Pollutant, Reading, SensorKind
from airpath.network.segments import MODE_WALK
from airpath.network.store import Network
from airpath.sensors.incidents import project_m

FloatArray = npt.NDArray[np.float64]

LOW_COST_NOISE_UGM3 = {"no2": 4.0, "pm10": 3.0, "pm25": 2.0}
LOW_COST_OFFSET_SD_UGM3 = {"no2": 3.0, "pm10": 2.0, "pm25": 2.0}
LOW_COST_GAIN_RANGE = (0.8, 1.3)
LOW_COST_DRIFT_SD_UGM3_PER_DAY = 3.0
LOW_COST_PERIODS_S = (60, 90, 120)
LOW_COST_DROPOUT_PROB = 0.02
LOW_COST_OUTAGES_PER_DAY = 1.0
LOW_COST_OUTAGE_MIN = (10.0, 60.0)
MOBILE_PERIOD_S = 5.0
MOBILE_NOISE_REL = 0.05
MOBILE_NOISE_UGM3 = {"no2": 3.0, "pm10": 2.0, "pm25": 1.5}
MOBILE_GPS_SD_M = 2.0
MOBILE_SPEED_FACTOR = (0.85, 1.15)
TARGET_REACHED_M = 200.0
STEER_SCALE_M = 150.0  # softness of the walk's preference for edges towards the target
M_PER_DEG_LAT = 111_195.0  # mean Earth radius × π/180


@dataclass(frozen=True)
class LowCostSensor:
    """A fixed low-cost sensor and its true error model (µg/m³ per pollutant)."""

    sensor_id: str
    lat: float
    lon: float
    edge: int
    pollutants: tuple[str, ...]
    gain: tuple[float, ...]
    offset_ugm3: tuple[float, ...]
    drift_ugm3_per_day: tuple[float, ...]
    noise_sd_ugm3: tuple[float, ...]
    period_s: int
    phase_s: int
    outages_s: tuple[tuple[float, float], ...]  # [from, to) seconds after the start

    def to_json(self) -> dict[str, Any]:
        return {"sensor_kind": "low_cost", **asdict(self)}


@dataclass(frozen=True)
class MobileSensor:
    sensor_id: str
    speed_factor: float
    start_edge: int
    pollutants: tuple[str, ...]
    noise_rel: float
    noise_sd_ugm3: tuple[float, ...]
    gps_sd_m: float
    period_s: float

    def to_json(self) -> dict[str, Any]:
        return {"sensor_kind": "mobile", **asdict(self)}


def edge_midpoint_latlon(network: Network, e: int) -> tuple[float, float]:
    pts = network.edge_geometry(e)
    lon, lat = pts[len(pts) // 2] if len(pts) > 2 else pts.mean(axis=0)
    return round(float(lat), 6), round(float(lon), 6)


def make_low_cost(
    network: Network, rng: np.random.Generator, n: int, duration_s: float
) -> list[LowCostSensor]:
    pols = tuple(network.pollutants)
    out = []
    for i in range(n):
        e = int(rng.integers(network.n_edges))
        lat, lon = edge_midpoint_latlon(network, e)
        period = int(rng.choice(LOW_COST_PERIODS_S))
        n_out = int(rng.poisson(LOW_COST_OUTAGES_PER_DAY * duration_s / 86400.0))
        outages = []
        for _ in range(n_out):
            t0 = float(rng.uniform(0.0, duration_s))
            outages.append((round(t0), round(t0 + 60.0 * rng.uniform(*LOW_COST_OUTAGE_MIN))))
        out.append(
            LowCostSensor(
                sensor_id=f"lc-{i:03d}",
                lat=lat,
                lon=lon,
                edge=e,
                pollutants=pols,
                gain=tuple(round(float(rng.uniform(*LOW_COST_GAIN_RANGE)), 4) for _ in pols),
                offset_ugm3=tuple(
                    round(float(rng.normal(0.0, LOW_COST_OFFSET_SD_UGM3.get(p, 2.0))), 3)
                    for p in pols
                ),
                drift_ugm3_per_day=tuple(
                    round(float(rng.normal(0.0, LOW_COST_DRIFT_SD_UGM3_PER_DAY)), 3) for _ in pols
                ),
                noise_sd_ugm3=tuple(LOW_COST_NOISE_UGM3.get(p, 2.0) for p in pols),
                period_s=period,
                phase_s=int(rng.integers(period)),
                outages_s=tuple(sorted(outages)),
            )
        )
    return out


def make_mobile(network: Network, rng: np.random.Generator, n: int) -> list[MobileSensor]:
    pols = tuple(network.pollutants)
    return [
        MobileSensor(
            sensor_id=f"bike-{i:03d}",
            speed_factor=round(float(rng.uniform(*MOBILE_SPEED_FACTOR)), 3),
            start_edge=int(rng.integers(network.n_edges)),
            pollutants=pols,
            noise_rel=MOBILE_NOISE_REL,
            noise_sd_ugm3=tuple(MOBILE_NOISE_UGM3.get(p, 2.0) for p in pols),
            gps_sd_m=MOBILE_GPS_SD_M,
            period_s=MOBILE_PERIOD_S,
        )
        for i in range(n)
    ]


class LowCostSampler:
    """Produces one low-cost sensor's readings, tick by tick, from its own random stream."""

    def __init__(
        self,
        spec: LowCostSensor,
        rng: np.random.Generator,
        start: dt.datetime,
        pol_index: list[int],
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.start = start
        self.rows = pol_index  # row of each of spec.pollutants in the truth array

    def sample(self, t0_s: float, t1_s: float, truth: FloatArray) -> list[Reading]:
        s = self.spec
        first = math.ceil((t0_s - s.phase_s) / s.period_s)
        times = []
        j = first
        while (t := s.phase_s + j * s.period_s) < t1_s:
            times.append(t)
            j += 1
        out = []
        for t_s in times:
            keep = float(self.rng.random()) >= LOW_COST_DROPOUT_PROB
            noise = self.rng.standard_normal(len(s.pollutants)).tolist()
            if not keep or any(a <= t_s < b for a, b in s.outages_s):
                continue
            when = self.start + dt.timedelta(seconds=t_s)
            for i, p in enumerate(s.pollutants):
                true = float(truth[self.rows[i], s.edge])
                v = (
                    s.gain[i] * true
                    + s.offset_ugm3[i]
                    + s.drift_ugm3_per_day[i] * t_s / 86400.0
                    + s.noise_sd_ugm3[i] * noise[i]
                )
                out.append(
                    Reading(
                        s.sensor_id,
                        SensorKind.LOW_COST,
                        s.lat,
                        s.lon,
                        when,
                        Pollutant(p),
                        round(max(v, 0.0), 3),
                    )
                )
        return out


class _EdgeShape:
    """An edge's polyline with cumulative length fractions, for positions along it."""

    def __init__(self, lonlat: FloatArray, lat0: float) -> None:
        self.lonlat = lonlat
        x, y = project_m(lonlat[:, 0], lonlat[:, 1], lat0)
        dx, dy = np.diff(x), np.diff(y)
        seg = np.hypot(dx, dy)
        total = float(seg.sum())
        self.cum = np.concatenate([[0.0], np.cumsum(seg)]) / total if total > 0 else None
        self.heading_deg = np.degrees(np.arctan2(dx, dy)) % 360.0

    def at(self, frac: float) -> tuple[float, float, float]:
        """(lon, lat, heading_deg) at a fraction of the length."""
        if self.cum is None:
            return float(self.lonlat[0, 0]), float(self.lonlat[0, 1]), 0.0
        i = int(np.searchsorted(self.cum, frac, side="right")) - 1
        i = min(max(i, 0), len(self.cum) - 2)
        span = self.cum[i + 1] - self.cum[i]
        w = (frac - self.cum[i]) / span if span > 0 else 0.0
        lon, lat = (1 - w) * self.lonlat[i] + w * self.lonlat[i + 1]
        return float(lon), float(lat), float(self.heading_deg[i])


class MobileSampler:
    """One rider: moves along the network and reports every ``period_s`` seconds."""

    def __init__(
        self,
        spec: MobileSensor,
        network: Network,
        rng: np.random.Generator,
        start: dt.datetime,
        pol_index: list[int],
        node_xy_m: tuple[FloatArray, FloatArray],
        shapes: dict[int, _EdgeShape],
    ) -> None:
        self.spec, self.net, self.rng, self.start, self.rows = spec, network, rng, start, pol_index
        self.node_x, self.node_y = node_xy_m
        self.shapes = shapes
        self.lat0 = float(np.mean(network.node_lat))
        self.edge = spec.start_edge
        self.pos_m = 0.0
        self.target = int(rng.integers(network.n_nodes))
        self.next_s = 0.0  # time of the next report, seconds after the start

    def _speed_mps(self, e: int) -> float:
        dur = float(self.net.edge_duration_s[e])
        length = float(self.net.edge_length_m[e])
        return (length / dur if dur > 0 else 4.0) * self.spec.speed_factor

    def _next_edge(self) -> int:
        net, node = self.net, int(self.net.edge_head[self.edge])
        if (
            math.hypot(
                self.node_x[node] - self.node_x[self.target],
                self.node_y[node] - self.node_y[self.target],
            )
            < TARGET_REACHED_M
        ):
            self.target = int(self.rng.integers(net.n_nodes))
        cand = np.arange(int(net.indptr[node]), int(net.indptr[node + 1]))
        if len(cand) == 0:
            return int(self.rng.integers(net.n_edges))  # dead end: the rider is re-placed
        forward = cand[net.edge_segment[cand] != net.edge_segment[self.edge]]
        cand = forward if len(forward) else cand
        heads = net.edge_head[cand]
        d = np.hypot(
            self.node_x[heads] - self.node_x[self.target],
            self.node_y[heads] - self.node_y[self.target],
        )
        w = np.exp(-(d - d.min()) / STEER_SCALE_M)
        # Riders avoid pushing the bike: a walk-only edge is taken 20× less often.
        w = np.where(net.edge_mode[cand] == MODE_WALK, 0.05 * w, w)
        return int(cand[self.rng.choice(len(cand), p=w / w.sum())])

    def _advance(self, dt_s: float) -> None:
        left_s = dt_s
        for _ in range(10_000):  # bounded: zero-length edges cannot loop forever
            v = self._speed_mps(self.edge)
            length = float(self.net.edge_length_m[self.edge])
            to_end_s = (length - self.pos_m) / v
            if left_s < to_end_s:
                self.pos_m += v * left_s
                return
            left_s -= to_end_s
            self.edge, self.pos_m = self._next_edge(), 0.0

    def _shape(self, e: int) -> _EdgeShape:
        shape = self.shapes.get(e)
        if shape is None:
            shape = _EdgeShape(np.asarray(self.net.edge_geometry(e), dtype=np.float64), self.lat0)
            self.shapes[e] = shape
        return shape

    def sample(self, t0_s: float, t1_s: float, truth: FloatArray) -> list[Reading]:
        # Reports are due every period_s from the start; t0_s only bounds the tick.
        del t0_s
        s = self.spec
        out: list[Reading] = []
        while self.next_s < t1_s:
            t_s = self.next_s
            length = float(self.net.edge_length_m[self.edge])
            lon, lat, heading = self._shape(self.edge).at(self.pos_m / length if length else 0.0)
            z = self.rng.standard_normal(2 + 2 * len(s.pollutants)).tolist()
            lat += s.gps_sd_m * z[0] / M_PER_DEG_LAT
            lon += s.gps_sd_m * z[1] / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
            speed = self._speed_mps(self.edge)
            when = self.start + dt.timedelta(seconds=t_s)
            for i, p in enumerate(s.pollutants):
                true = float(truth[self.rows[i], self.edge])
                v = (
                    true * (1.0 + s.noise_rel * z[2 + i])
                    + s.noise_sd_ugm3[i] * z[2 + len(s.pollutants) + i]
                )
                out.append(
                    Reading(
                        s.sensor_id,
                        SensorKind.MOBILE,
                        round(lat, 7),
                        round(lon, 7),
                        when,
                        Pollutant(p),
                        round(max(v, 0.0), 3),
                        speed_mps=round(speed, 3),
                        heading_deg=round(heading, 1),
                    )
                )
            self._advance(s.period_s)
            self.next_s += s.period_s
        return out
