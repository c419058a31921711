"""The router: snapping, engine choice, live pollution fields, alternatives.

Live weights: everything a query reads from the field lives in one immutable
:class:`_State` (the field, per-profile weights and their CCH metrics). A query takes the
current state once and uses it throughout, and :meth:`Router.apply_field` builds a new
state and swaps the reference, so a query sees the old field or the new one, never a
mix. With ``background=True`` the swap happens in two steps: flexible queries switch to
the new field at once, preset (CCH) queries keep answering from the previous state until
the new metrics are customised on a worker thread (one at a time, always on the newest
field: a field replaced before its turn is skipped).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from airpath.errors import (
    AirpathError,
    FieldError,
    NoRouteError,
    ProfileError,
    SameEndpointsError,
)
from airpath.network.store import Network
from airpath.routing import profiles as pf
from airpath.routing.alternatives import find_alternatives, label_against
from airpath.routing.cch_large import LARGE_NETWORK_EDGES, LargeCCHEngine
from airpath.routing.detail_kernels import Piece
from airpath.routing.engines import (
    CCHEngine,
    Endpoint,
    Engine,
    Metric,
    between_from_cch,
    flexible,
)
from airpath.routing.field import PollutionField
from airpath.routing.result import (
    Between,
    Path,
    Route,
    RouteResult,
    Totals,
    assemble,
    path_totals,
)
from airpath.routing.search import detour_limited, time_dependent_route
from airpath.routing.snap import Snap, Snapper

FloatArray = npt.NDArray[np.float64]
LatLon = tuple[float, float]
JUNCTION_M = 0.01  # a snapped point this close to a junction is at the junction
# A search end before the weights: (node, edge, share of the edge's weight the partial
# edge costs, piece); edge -1 means no partial edge, and the share is the cost (0).
_End = tuple[int, int, float, Piece]


@dataclass
class _State:
    field: PollutionField
    weights: dict[str, FloatArray]  # the preset profiles' weights
    metrics: dict[str, Metric]  # filled once customised (maybe on a worker thread)
    preset: tuple[str, ...]  # the keys served by a CCH metric


def prior_field(network: Network) -> PollutionField:
    """The network's annual priors as a one-horizon field (what a router starts with)."""
    built = dt.datetime.fromisoformat(network.manifest["built_at"])
    return PollutionField.create(
        "prior",
        built,
        {
            p: np.asarray(network.edge_prior_ugm3[k], dtype=np.float64)
            for k, p in enumerate(network.pollutants)
        },
        n_edges=network.n_edges,
    )


class Router:
    """Exact least-exposure routing on one network.

    >>> router = Router(network)                              # doctest: +SKIP
    >>> result = router.route((60.17, 24.94), (60.16, 24.92))  # doctest: +SKIP
    >>> result.best.dose_ug, result.best.distance_m           # doctest: +SKIP
    """

    def __init__(
        self,
        network: Network,
        *,
        max_snap_m: float = 500.0,
        field: PollutionField | None = None,
        preset_pollutants: Sequence[str] = ("no2",),
        engine: str = "auto",
    ) -> None:
        """``engine``: "auto" (by network size), "small" or "large" (see cch_large)."""
        if engine not in ("auto", "small", "large"):
            raise ProfileError(f"engine must be auto, small or large, got {engine!r}")
        self.network = network
        self.snapper = Snapper(network, max_snap_m)
        large = engine == "large" or (engine == "auto" and network.n_edges >= LARGE_NETWORK_EDGES)
        # Large networks: a binding that customises without holding the GIL (cch_large).
        self.engine: Engine = LargeCCHEngine(network) if large else CCHEngine(network)
        self._preset_pollutants = tuple(preset_pollutants)
        self._static: dict[str, FloatArray] = {}
        self._static_metrics: dict[str, Metric] = {}
        for name in ("shortest", "fastest", "comfort"):
            w = pf.static_weights(network, name)
            self._static[name] = w
            self._static_metrics[name] = self.engine.customise(w, name)
        self._apply_lock = threading.Lock()
        first = self._new_state(field or prior_field(network))
        self._customise(first)
        self._state = first  # what preset (CCH) queries use
        self._latest = first  # what flexible queries use
        self._worker: threading.Thread | None = None

    # -- live weights ---------------------------------------------------------------------
    @property
    def field(self) -> PollutionField:
        return self._latest.field

    def apply_field(self, new: PollutionField, *, background: bool = False) -> None:
        """Serve ``new`` from now on; a bad field raises :class:`FieldError` and the
        router keeps the previous one."""
        if not isinstance(new, PollutionField):
            raise FieldError("apply_field takes a PollutionField (see PollutionField.create)")
        for p, arr in new.concentration_ugm3.items():
            if arr.shape[-1] != self.network.n_edges:
                raise FieldError(
                    f"{p}: field has {arr.shape[-1]} edges, network has {self.network.n_edges}"
                )
        missing = set(self._preset_pollutants) - set(new.concentration_ugm3)
        if missing:
            raise FieldError(f"field lacks pollutants {sorted(missing)}")
        with self._apply_lock:
            state = self._new_state(new)
            if not background:
                self._customise(state)
                self._state = self._latest = state
                return
            self._latest = state
            if self._worker is None:  # else the running worker moves on to this state
                self._worker = threading.Thread(
                    target=self._customise_latest, name="cch-customise", daemon=True
                )
                self._worker.start()

    def wait_customised(self, timeout: float | None = None) -> None:
        """Wait for the background customisation started by :meth:`apply_field`."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def _customise_latest(self) -> None:
        """The one background worker: customise the newest state until it is served.

        Fields can arrive faster than a large network customises (about 2 s per metric on
        a 1M-edge grid): a thread per field would pile up and take every core from the
        queries. One worker at a time, which drops a state as soon as a newer one
        replaces it (its metrics would never be used), at a lower CPU priority (Linux
        threads can be reniced one by one), keeps customisation behind the queries.
        """
        if sys.platform == "linux":
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while True:
            with self._apply_lock:
                state = self._latest
            for key in state.preset:
                if self._latest is not state:
                    break
                if key not in state.metrics:
                    state.metrics[key] = self.engine.customise(state.weights[key], key)
                    time.sleep(0)  # let waiting queries run between metrics
            with self._apply_lock:
                if self._latest is state:
                    self._state = state
                    self._worker = None  # under the lock: apply_field never misses a state
                    return

    def _new_state(self, fld: PollutionField) -> _State:
        w: dict[str, FloatArray] = dict(self._static)
        for p in self._preset_pollutants:
            for name in ("least_exposure", "balanced"):  # customised in this order
                spec = pf.make_spec(name, p, tuple(fld.concentration_ugm3))
                w[spec.key] = pf.weights(self.network, spec, fld.now(p))
        return _State(fld, w, dict(self._static_metrics), tuple(w))

    def _customise(self, state: _State) -> None:
        for key in state.preset:
            if key not in state.metrics:
                state.metrics[key] = self.engine.customise(state.weights[key], key)
                # RoutingKit customises holding the GIL: let waiting queries run between
                # metrics (each one is live as soon as it is stored above).
                time.sleep(0)

    def _weights(self, state: _State, spec: pf.ProfileSpec) -> FloatArray:
        """The weights of ``spec`` under ``state``'s field: the preset ones are kept with
        the state; per-request ones (another balance α, another pollutant) are computed
        for the request and not kept, so arbitrary requests cannot grow memory."""
        w = state.weights.get(spec.key)
        if w is None:
            w = pf.weights(self.network, spec, state.field.now(spec.pollutant))
        return w

    def warm_up(self) -> None:
        """Route once on each kind of engine so that a service's first request does not
        pay for the compiled kernels: numba compiles them on first use (seconds on a fresh
        install) or loads them from its cache (tens of milliseconds). A preset route with
        its detail built, then a detour-limited one (the per-request search), between the
        first and the middle node, the first departing at the field's time (the rider's
        times along it); where those two cannot be routed (same place, no connection)
        the first request pays instead."""
        net = self.network
        a, b = 0, net.n_nodes // 2
        origin = (float(net.node_lat[a]), float(net.node_lon[a]))
        destination = (float(net.node_lat[b]), float(net.node_lon[b]))
        with contextlib.suppress(AirpathError):
            for depart, detour in ((self.field.valid_at, None), (None, 10.0)):
                result = self.route(origin, destination, depart=depart, max_detour_pct=detour)
                for r in result.routes:
                    _ = r.legs, r.steps, r.coordinates

    # -- queries --------------------------------------------------------------------------
    def route(
        self,
        origin: LatLon,
        destination: LatLon,
        profile: str = "least_exposure",
        *,
        pollutant: str = "no2",
        depart: dt.datetime | None = None,
        alternatives: int = 0,
        max_detour_pct: float | None = None,
        balance: float | None = None,
    ) -> RouteResult:
        """Route from ``origin`` to ``destination`` (each ``(lat, lon)``).

        ``depart`` (timezone-aware) makes exposure profiles use the forecast horizons;
        ``alternatives`` asks for up to that many more routes (at most 3) that share at
        most 70 % of their length; ``max_detour_pct`` asks for the least dose within that
        much extra distance over the shortest route.
        """
        preset, latest = self._state, self._latest
        spec = pf.make_spec(profile, pollutant, tuple(latest.field.concentration_ugm3), balance)
        if max_detour_pct is not None and not (0.0 <= max_detour_pct <= 1000.0):
            raise ProfileError(f"max_detour_pct must be within 0..1000, got {max_detour_pct}")
        if not 0 <= alternatives <= 3:
            raise ProfileError(f"alternatives must be 0..3, got {alternatives}")
        if depart is not None and depart.tzinfo is None:
            raise ProfileError("depart must carry a time zone (e.g. 2026-05-01T08:00+02:00)")
        o, d = self.snapper.snap_many([origin, destination])
        if o.segment == d.segment and abs(o.fraction - d.fraction) * self._seg_len(o) < 1.0:
            raise SameEndpointsError("origin and destination are the same place")

        # One state per query. A preset profile uses the newest state whose hierarchy is
        # customised for it (during a background customisation, the previous one);
        # everything else uses the newest field on the flexible engines.
        flexible_only = max_detour_pct is not None or (
            depart is not None and spec.uses_field and len(latest.field.horizons_min) > 1
        )
        state = latest
        if not flexible_only and spec.key not in latest.metrics and spec.key in preset.metrics:
            state = preset
        fld = state.field
        offset = None
        if depart is not None:
            offset = max((depart - fld.valid_at).total_seconds(), 0.0)
        conc = fld.concentration_ugm3[spec.pollutant]
        ctx = _Query(
            self,
            state,
            o,
            d,
            spec,
            offset,
            conc,
            fld.horizons_s,
        )
        path, engine = ctx.path(spec, max_detour_pct)
        if spec.name == "shortest" or alternatives:
            main = ctx.finish(spec, path, engine)
            routes = [main]
            if spec.name == "shortest":
                label_against(main, main)
            else:  # the shortest route may be shown: it is a whole route
                shortest = ctx.solve(ctx.shortest_spec, None)
                label_against(main, shortest)
                routes += find_alternatives(ctx, main, shortest, alternatives)
        else:
            # Only the shortest route's distance, dose and edges are needed. Its search
            # runs before the route is assembled, right after the first one, while the
            # hierarchy's memory is still in the processor's cache.
            shortest_totals = ctx.totals(ctx.shortest_spec)
            main = ctx.finish(spec, path, engine)
            label_against(main, shortest_totals)
            routes = [main]
        return RouteResult(
            routes=routes,
            pollutant=spec.pollutant,
            field_version=ctx.state.field.version,
            field_valid_at=ctx.state.field.valid_at,
            depart=depart,
            origin=(o.lat, o.lon),
            destination=(d.lat, d.lon),
            meta={"snap_distance_m": [round(o.distance_m, 1), round(d.distance_m, 1)]},
        )

    def _seg_len(self, s: Snap) -> float:
        e = s.edge_fwd if s.edge_fwd >= 0 else s.edge_bwd
        return float(self.network.arrays["edge_length_m"][e])


class _Query:
    """One request's fixed context: state, endpoints, concentrations, departure offset."""

    def __init__(
        self,
        router: Router,
        state: _State,
        o: Snap,
        d: Snap,
        spec: pf.ProfileSpec,
        offset: float | None,
        conc: FloatArray,
        horizons_s: FloatArray,
    ) -> None:
        self.router, self.network, self.state = router, router.network, state
        self.o, self.d, self.spec = o, d, spec
        self.offset, self.conc, self.horizons_s = offset, conc, horizons_s
        self._ends = self._end_terms()

    def _end_terms(self) -> tuple[list[_End], list[_End], list[_End]]:
        """The weight-independent part of :meth:`endpoints`, worked out once per query."""
        o, d = self.o, self.d
        arrays = self.network.arrays  # plain dict lookups (Network attributes go via __getattr__)
        heads, tails = arrays["edge_head"], arrays["edge_tail"]
        # Each direction of the snapped segment: (edge, share of its weight, piece).
        leave = (
            (o.edge_fwd, 1 - o.fraction, o.fraction),
            (o.edge_bwd, o.fraction, 1.0 - o.fraction),
        )
        reach = (
            (d.edge_fwd, d.fraction, d.fraction),
            (d.edge_bwd, 1 - d.fraction, 1.0 - d.fraction),
        )
        src = [(int(heads[e]), e, share, (e, a, 1.0)) for e, share, a in leave if e >= 0]
        tgt = [(int(tails[e]), e, share, (e, 0.0, b)) for e, share, b in reach if e >= 0]
        # A point snapped onto a junction may leave or reach it along any edge there, not
        # only along the segment it was snapped to (which may be one-way).
        for snap, out in ((o, src), (d, tgt)):
            node_at = self._junction(snap)
            if node_at is not None:
                e = snap.edge_fwd if snap.edge_fwd >= 0 else snap.edge_bwd
                if snap.fraction in (0.0, 1.0):
                    # Exactly on the junction, every other end is dominated: it is the
                    # junction itself at a cost >= 0, or the snapped edge's far end at
                    # that edge's full weight, which the junction reaches (or is reached
                    # from) along the edge at the same cost. One end makes a one-to-one
                    # query, cheaper than a multi-source one on either engine.
                    out.clear()
                out.append((node_at, -1, 0.0, (e, 0.0, 0.0)))
        direct: list[_End] = []
        if o.segment == d.segment:
            if d.fraction >= o.fraction and o.edge_fwd >= 0:
                piece = (o.edge_fwd, o.fraction, d.fraction)
                direct.append((-1, o.edge_fwd, d.fraction - o.fraction, piece))
            if d.fraction <= o.fraction and o.edge_bwd >= 0:
                piece = (o.edge_bwd, 1.0 - o.fraction, 1.0 - d.fraction)
                direct.append((-1, o.edge_bwd, o.fraction - d.fraction, piece))
        return src, tgt, direct

    def endpoints(
        self, w: FloatArray
    ) -> tuple[list[Endpoint], list[Endpoint], list[tuple[float, Piece]]]:
        """Where a search under weights ``w`` starts and ends, and the paths that stay on
        the snapped segment, with the cost of each partial edge."""
        src, tgt, direct = self._ends
        return (
            [Endpoint(n, f * w[e] if e >= 0 else f, piece) for n, e, f, piece in src],
            [Endpoint(n, f * w[e] if e >= 0 else f, piece) for n, e, f, piece in tgt],
            [(f * w[e], piece) for _n, e, f, piece in direct],
        )

    def _junction(self, snap: Snap) -> int | None:
        """The node a snapped point lies on (within ``JUNCTION_M``), if any."""
        forward = snap.edge_fwd >= 0
        e = snap.edge_fwd if forward else snap.edge_bwd
        arrays = self.network.arrays
        length = float(arrays["edge_length_m"][e])
        # The segment's first node is the tail of its forward edge (the head of its
        # backward one), its last node the other end.
        if snap.fraction * length <= JUNCTION_M:
            return int(arrays["edge_tail" if forward else "edge_head"][e])
        if (1.0 - snap.fraction) * length <= JUNCTION_M:
            return int(arrays["edge_head" if forward else "edge_tail"][e])
        return None

    def solve(
        self, spec: pf.ProfileSpec, max_detour_pct: float | None, *, detail: bool = True
    ) -> Route:
        """The best route for ``spec``; ``detail=False`` skips legs, steps and geometry."""
        return self.finish(spec, *self.path(spec, max_detour_pct), detail=detail)

    def path(
        self, spec: pf.ProfileSpec, max_detour_pct: float | None
    ) -> tuple[Path | Between, str]:
        """The pieces of the best route for ``spec`` and the engine that found them."""
        if spec.uses_field and self.offset is not None and self.conc.shape[0] > 1:
            _cost, pieces = time_dependent_route(self, spec)
            return Path.of(pieces), "time-dependent"
        if max_detour_pct is not None and spec.uses_field:
            return detour_limited(self, spec, max_detour_pct), "flexible"
        return self.preset_path(spec)

    @property
    def shortest_spec(self) -> pf.ProfileSpec:
        """The shortest profile the request's routes are compared against (its pollutant
        already checked against the field by the request's own spec)."""
        p = self.spec.pollutant
        return pf.make_spec("shortest", p, (p,))

    def totals(self, spec: pf.ProfileSpec) -> Totals:
        """The distance, dose and edges of the best route for a preset ``spec``, without
        the route: what :meth:`solve` gives, less the objects nobody reads."""
        path, _engine = self.preset_path(spec)
        return path_totals(self.network, path, self.conc, self.horizons_s, self.offset)

    def preset_path(self, spec: pf.ProfileSpec) -> tuple[Path | Between, str]:
        """:meth:`best_path` under ``spec``'s weights, on its hierarchy if it has one."""
        w = self.router._weights(self.state, spec)
        return self.best_path(w, self.state.metrics.get(spec.key))

    def best_path(self, w: FloatArray, metric: Metric | None) -> tuple[Path | Between, str]:
        """The least-cost pieces under ``w`` and the engine that found them: a hierarchy's
        answer as it comes (:class:`.Between`) with ``metric``, else a :class:`.Path`."""
        src, tgt, direct = self.endpoints(w)
        cost, engine = float("inf"), "flexible"
        path: Path | Between | None = None
        if src and tgt:
            if metric is not None:
                dist, nodes, arcs = metric.query(src, tgt)
                if dist is not None:
                    cost, path, engine = (
                        dist / metric.scale,
                        between_from_cch(nodes, arcs, src, tgt),
                        "cch",
                    )
            else:
                cost, path = flexible(self.network, w, src, tgt)
        for c, piece in direct:
            if c <= cost:
                cost, path = c, Path.of([piece])
        if path is None:
            raise NoRouteError("no rideable connection between origin and destination")
        return path, engine

    def finish(
        self, spec: pf.ProfileSpec, path: Path | Between, engine: str, *, detail: bool = True
    ) -> Route:
        return assemble(
            self.network,
            path,
            spec.name,
            engine,
            self.conc,
            self.horizons_s,
            self.offset,
            detail=detail,
        )
