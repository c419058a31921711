"""Map-matching: validated readings (lat/lon) onto the network's street edges.

Each reading goes to the nearest segment a cyclist may ride or walk (the router's
:class:`~airpath.routing.snap.Snapper`, one compiled grid search per batch) and to
that segment's forward edge (its backward edge on a one-way street against the
geometry). The two directions of a street share a midpoint and hence a truth and an
estimate, so the direction does not matter to the estimators.

Footways and steps count: a bike sensor pushed through a park measures the air there.
A reading farther from any such street than its kind's tolerance is rejected with
:attr:`MatchReject.TOO_FAR` and counted: a mobile sensor 30 m off a street is off the
network (GPS error is ~2 m per axis; a glitch or a ride through a park), a fixed sensor
may stand on a façade or a rooftop up to 100 m from the nearest street axis.

>>> from airpath.air.matching import MatchTolerance
>>> MatchTolerance().for_kind("mobile"), MatchTolerance().for_kind("reference")
(30.0, 100.0)
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from airpath.air.observations import FloatArray, IntArray, ObservationBatch
from airpath.air.readings import ValidReading
from airpath.air.schema import SensorKind
from airpath.errors import InputError
from airpath.network.store import Network
from airpath.routing.snap import Snapper

__all__ = ["EdgeMatcher", "MatchReject", "MatchResult", "MatchTolerance"]

# Farther than any tolerance: the snapper finds every point, we judge the distance.
_SEARCH_LIMIT_M = 50_000.0


class MatchReject(enum.StrEnum):
    """Why a reading was not matched to an edge."""

    TOO_FAR = "too_far_from_street"


@dataclass(frozen=True)
class MatchTolerance:
    """Largest distance (m) from a reading to its street, per sensor kind."""

    mobile_m: float = 30.0
    fixed_m: float = 100.0

    def __post_init__(self) -> None:
        if not (self.mobile_m > 0 and self.fixed_m > 0):
            raise InputError(
                f"match tolerances must be positive, got {self.mobile_m} m / {self.fixed_m} m"
            )

    def for_kind(self, kind: str) -> float:
        return self.mobile_m if kind == SensorKind.MOBILE.value else self.fixed_m


@dataclass(frozen=True)
class MatchResult:
    """Matched observations, and how many readings were rejected and why."""

    batch: ObservationBatch
    distance_m: FloatArray  # per matched row, reading to street
    rejected: dict[MatchReject, int] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())


class EdgeMatcher:
    """Nearest street edge (ridden or walked) within a tolerance, for many readings at once."""

    def __init__(self, network: Network, tolerance: MatchTolerance | None = None) -> None:
        self.tolerance = tolerance or MatchTolerance()
        self.snapper = Snapper(network, _SEARCH_LIMIT_M, walkable=True)

    def match_points(
        self, lat: Sequence[float], lon: Sequence[float], tolerance_m: Sequence[float]
    ) -> tuple[IntArray, FloatArray]:
        """Edge id per point (-1 when beyond its tolerance) and the distance (m)."""
        if not (len(lat) == len(lon) == len(tolerance_m)):
            raise InputError("match_points needs lat, lon and tolerance_m of one length")
        if len(lat) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        # Sensors report several pollutants from one place: snap each place once.
        points, inverse = np.unique(
            np.column_stack([np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)]),
            axis=0,
            return_inverse=True,
        )
        inverse = inverse.reshape(-1)
        snaps = self.snapper.snap_many([(float(a), float(b)) for a, b in points])
        fwd = np.fromiter((s.edge_fwd for s in snaps), dtype=np.int64, count=len(snaps))
        bwd = np.fromiter((s.edge_bwd for s in snaps), dtype=np.int64, count=len(snaps))
        dist_unique = np.fromiter((s.distance_m for s in snaps), dtype=np.float64, count=len(snaps))
        edge = np.where(fwd >= 0, fwd, bwd)[inverse]
        dist = dist_unique[inverse]
        edge[dist > np.asarray(tolerance_m, dtype=np.float64)] = -1
        return edge, dist

    def match(self, readings: Sequence[ValidReading]) -> MatchResult:
        """Validated readings → an :class:`ObservationBatch` of those near a street."""
        kinds = [v.reading.sensor_kind.value for v in readings]
        edge, dist = self.match_points(
            [v.reading.lat for v in readings],
            [v.reading.lon for v in readings],
            [self.tolerance.for_kind(k) for k in kinds],
        )
        keep = np.flatnonzero(edge >= 0)
        rows = [readings[int(i)] for i in keep]
        batch = ObservationBatch.create(
            edge[keep],
            [v.reading.time.timestamp() for v in rows],
            [v.reading.pollutant.value for v in rows],
            [v.value_ugm3 for v in rows],
            [v.reading.sensor_id for v in rows],
            [kinds[int(i)] for i in keep],
        )
        n_far = len(readings) - len(keep)
        rejected = dict(Counter({MatchReject.TOO_FAR: n_far})) if n_far else {}
        return MatchResult(batch, dist[keep], rejected)
