"""Per-request searches on the numba kernels: time-dependent dose, and least dose within a
detour budget.

Least dose within a detour budget is a resource-constrained shortest path, NP-hard in
general; we return the least-dose route among the exact minimisers of
``dose + λ × distance`` over λ ≥ 0 (the supported points of the dose–distance Pareto
front) whose distance stays within the budget. Every candidate is an exact shortest path
for its λ; the shortest route (λ → ∞) always qualifies, so an answer always exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from airpath.errors import NoRouteError
from airpath.routing import kernels
from airpath.routing import profiles as pf
from airpath.routing.detail_kernels import Piece
from airpath.routing.result import Between, Path

if TYPE_CHECKING:
    from airpath.routing.router import _Query

LAMBDA_STEPS = 12


def time_dependent_route(q: _Query, spec: pf.ProfileSpec) -> tuple[float, list[Piece]]:
    """Least time-dependent cost from the snapped origin to the snapped destination."""
    net = q.network
    conc = q.conc
    factor, static = pf.dose_terms(net, spec, conc[0])
    duration = np.asarray(net.edge_duration_s, dtype=np.float64)
    inhaled = np.asarray(net.edge_inhaled_m3, dtype=np.float64)
    depart = float(q.offset or 0.0)

    def piece_cost(piece: Piece, t0: float) -> float:
        e, a, b = piece
        f = b - a
        c = float(np.interp(depart + t0 + 0.5 * f * duration[e], q.horizons_s, conc[:, e]))
        return f * (factor * c * inhaled[e] + static[e])

    src, tgt, direct = q.endpoints(static)  # only the nodes and pieces are used here
    s_nodes = np.array([s.node for s in src], dtype=np.int64)
    s_cost = np.array([piece_cost(s.piece, 0.0) for s in src])
    s_time = np.array([(s.piece[2] - s.piece[1]) * duration[s.piece[0]] for s in src])
    t_nodes = np.array([t.node for t in tgt], dtype=np.int64)
    t_edge = np.array([t.piece[0] for t in tgt], dtype=np.int64)
    t_frac = np.array([t.piece[2] for t in tgt])
    best, best_i, pred = np.inf, -1, np.empty(0, dtype=np.int64)
    if len(src) and len(tgt):
        best, best_i, pred = kernels.time_dependent(
            net.indptr,
            net.edge_head,
            duration,
            inhaled,
            static,
            factor,
            conc,
            q.horizons_s,
            depart,
            s_nodes,
            s_cost,
            s_time,
            t_nodes,
            t_edge,
            t_frac,
        )
    pieces: list[Piece] = []
    if best_i >= 0:
        arcs: list[int] = []
        n = int(t_nodes[best_i])
        while pred[n] >= 0:
            arcs.append(int(pred[n]))
            n = int(net.edge_tail[pred[n]])
        first = min((s for s in src if s.node == n), key=lambda s: piece_cost(s.piece, 0.0))
        pieces = [first.piece, *[(e, 0.0, 1.0) for e in arcs[::-1]], tgt[best_i].piece]
    for _, piece in direct:
        c = piece_cost(piece, 0.0)
        if c <= best:
            best, pieces = c, [piece]
    if not pieces:
        raise NoRouteError("no rideable connection between origin and destination")
    return float(best), pieces


def detour_limited(q: _Query, spec: pf.ProfileSpec, max_detour_pct: float) -> Path:
    """Least-dose route (per ``spec``) at most ``max_detour_pct`` % longer than the shortest."""
    net = q.network
    length = np.asarray(net.edge_length_m, dtype=np.float64)
    base = q.router._weights(q.state, spec)

    def solve(lam: float) -> tuple[float, float, Path]:
        path, _engine = q.best_path(base + lam * length, None)  # numba, per-request weights
        assert isinstance(path, Path)  # what best_path answers without a hierarchy
        part = path.b - path.a
        return float(part @ length[path.e]), float(part @ base[path.e]), path

    shortest = q.totals(q.shortest_spec)  # its distance is the budget's base
    budget = shortest.distance_m * (1.0 + max_detour_pct / 100.0) + 1e-6
    dist, value, path = solve(0.0)
    if dist <= budget:
        return path
    best = None
    lo, hi = 0.0, max(value / max(shortest.distance_m, 1.0), 1e-9)
    for _ in range(60):  # grow λ until the route fits the budget
        d_hi, v_hi, p_hi = solve(hi)
        if d_hi <= budget:
            best = (v_hi, p_hi)
            break
        lo, hi = hi, hi * 4.0
    if best is None:  # no λ tried made a route short enough: the shortest route
        found, _engine = q.preset_path(q.shortest_spec)
        return found.path() if isinstance(found, Between) else found
    for _ in range(LAMBDA_STEPS):
        mid = 0.5 * (lo + hi)
        d_mid, v_mid, p_mid = solve(mid)
        if d_mid <= budget:
            hi = mid
            if v_mid < best[0]:
                best = (v_mid, p_mid)
        else:
            lo = mid
    return best[1]
