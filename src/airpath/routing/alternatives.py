"""Alternative routes that really differ, each labelled with its trade-off.

Candidates, in order: the routes of the other profiles (a rider comparing the cleanest
route with the shortest one is the common case), then penalty routes: the requested
profile's weights with the edges of every route found so far made 1.5 × dearer (the
classic penalty method, Chen et al. / Bader et al. 2011 "Alternative route graphs").
A candidate is kept when it shares at most ``MAX_SHARED`` of its length with each route
already kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from airpath.errors import NoRouteError
from airpath.routing import profiles as pf
from airpath.routing.engines import flexible
from airpath.routing.result import Route, Totals

if TYPE_CHECKING:
    from airpath.routing.router import _Query

MAX_SHARED = 0.7
PENALTY = 1.5
PENALTY_ROUNDS = 6


def shared_fraction(a: Route, b: Route, segment: np.ndarray) -> float:
    """Length of street segments used by both routes over the shorter route's length."""
    seg_len: dict[int, float] = {}
    for s, length in zip(segment[a.legs.edge_id].tolist(), a.legs.length_m.tolist(), strict=True):
        seg_len[s] = seg_len.get(s, 0.0) + length
    in_b = set(segment[b.legs.edge_id].tolist())
    shared = sum(length for s, length in seg_len.items() if s in in_b)
    return shared / max(min(a.distance_m, b.distance_m), 1e-9)


def label_against(route: Route, shortest: Route | Totals) -> None:
    """Fill the changes versus the shortest route (whole, or its :class:`.Totals`) and a
    label saying the trade-off."""
    route.dose_change_pct = _pct(route.dose_ug, shortest.dose_ug)
    route.distance_change_pct = _pct(route.distance_m, shortest.distance_m)
    name = route.profile.replace("_", " ")
    if route is shortest or route.edge_path == shortest.edge_path:
        route.label = name
    else:
        route.label = (
            f"{name}: {route.dose_change_pct:+.0f} % dose, "
            f"{route.distance_change_pct:+.0f} % distance vs shortest"
        )


def _pct(x: float, ref: float) -> float:
    return 100.0 * (x - ref) / ref if ref > 0 else 0.0


def find_alternatives(q: _Query, main: Route, shortest: Route, count: int) -> list[Route]:
    segment = np.asarray(q.network.edge_segment)
    kept = [main]

    def consider(route: Route) -> None:
        if len(kept) <= count and all(
            shared_fraction(route, k, segment) <= MAX_SHARED for k in kept
        ):
            label_against(route, shortest)
            kept.append(route)

    pollutants = tuple(q.state.field.concentration_ugm3)
    consider(shortest)
    for name in pf.PROFILES:
        if len(kept) > count:
            break
        if name not in (main.profile, "shortest"):
            consider(q.solve(pf.make_spec(name, q.spec.pollutant, pollutants), None))

    w = q.router._weights(q.state, q.spec).copy()
    for _ in range(PENALTY_ROUNDS):
        if len(kept) > count:
            break
        used = np.isin(segment, [segment[e] for r in kept for e in r.edge_ids])
        w[used] *= PENALTY
        src, tgt, _direct = q.endpoints(w)
        if not (src and tgt):
            break
        _cost, path = flexible(q.network, w, src, tgt)
        if path is None:
            raise NoRouteError("no rideable connection between origin and destination")
        route = q.finish(q.spec, path, "flexible")
        route.profile = "alternative"
        consider(route)
    return kept[1:]
