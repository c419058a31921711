"""Exact shortest-path kernels in numba over CSR arrays (plain arrays in, plain arrays out).

* :func:`bidirectional` — bidirectional Dijkstra for any per-request non-negative edge
  weights, from several weighted sources to several weighted targets (snapped points lie
  inside edges, so a query starts at both ends of an edge with partial costs).
* :func:`time_dependent` — forward Dijkstra whose edge cost is the dose at the time the
  rider enters the edge: ``inhaled_m3[e] × c(e, t)``, with ``c`` interpolated linearly
  between forecast horizons and held constant past the last one. Travel times do not
  depend on the field, so the arrival time of a label is the departure time plus the
  static durations along its path. The search is exact (label-setting, every label popped
  is final) under the usual time-dependent Dijkstra condition that reaching a node with
  less dose never makes the rest of the trip worse; the dose reported for the returned
  route is always its true time-dependent dose.

Every kernel returns ``(cost, meet_or_target_index, predecessor arrays)`` so the caller
can unwind the path; nothing here knows about networks, profiles or fields.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True, inline="always")
def _push(heap_k: np.ndarray, heap_v: np.ndarray, size: int, key: float, val: int) -> int:
    i = size
    heap_k[i] = key
    heap_v[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if heap_k[parent] <= heap_k[i]:
            break
        heap_k[i], heap_k[parent] = heap_k[parent], heap_k[i]
        heap_v[i], heap_v[parent] = heap_v[parent], heap_v[i]
        i = parent
    return size + 1


@njit(cache=True, inline="always")
def _pop(heap_k: np.ndarray, heap_v: np.ndarray, size: int) -> int:
    size -= 1
    heap_k[0] = heap_k[size]
    heap_v[0] = heap_v[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and heap_k[left + 1] < heap_k[left]:
            child = left + 1
        if heap_k[i] <= heap_k[child]:
            break
        heap_k[i], heap_k[child] = heap_k[child], heap_k[i]
        heap_v[i], heap_v[child] = heap_v[child], heap_v[i]
        i = child
    return size


@njit(cache=True, nogil=True)
def bidirectional(
    indptr: np.ndarray,
    heads: np.ndarray,
    rev_indptr: np.ndarray,
    rev_edge: np.ndarray,
    tails: np.ndarray,
    weight: np.ndarray,
    sources: np.ndarray,
    source_cost: np.ndarray,
    targets: np.ndarray,
    target_cost: np.ndarray,
) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Least cost from any source (plus its cost) to any target (plus its cost).

    Returns ``(cost, meet_node, pred_fwd, pred_bwd)``: ``pred_fwd[n]`` is the edge by which
    the forward search reached ``n`` (-1 at a source), ``pred_bwd[n]`` the edge leaving
    ``n`` towards the target (-1 at a target). ``cost`` is inf and ``meet_node`` -1 when
    no target is reachable.
    """
    n = indptr.shape[0] - 1
    m = heads.shape[0]
    df = np.full(n, INF)
    db = np.full(n, INF)
    pf = np.full(n, -1, np.int64)
    pb = np.full(n, -1, np.int64)
    done_f = np.zeros(n, np.bool_)
    done_b = np.zeros(n, np.bool_)
    hk_f = np.empty(m + len(sources) + 1)
    hv_f = np.empty(m + len(sources) + 1, np.int64)
    hk_b = np.empty(m + len(targets) + 1)
    hv_b = np.empty(m + len(targets) + 1, np.int64)
    sf = 0
    sb = 0
    for i in range(len(sources)):
        s = sources[i]
        if source_cost[i] < df[s]:
            df[s] = source_cost[i]
            sf = _push(hk_f, hv_f, sf, df[s], s)
    for i in range(len(targets)):
        t = targets[i]
        if target_cost[i] < db[t]:
            db[t] = target_cost[i]
            sb = _push(hk_b, hv_b, sb, db[t], t)
    best = INF
    meet = -1
    for i in range(len(sources)):
        s = sources[i]
        if df[s] + db[s] < best:
            best = df[s] + db[s]
            meet = s
    while sf > 0 or sb > 0:
        top_f = hk_f[0] if sf > 0 else INF
        top_b = hk_b[0] if sb > 0 else INF
        if top_f + top_b >= best or (top_f == INF and top_b == INF):
            break
        if top_f <= top_b:
            u = hv_f[0]
            sf = _pop(hk_f, hv_f, sf)
            if done_f[u] or top_f > df[u]:
                continue
            done_f[u] = True
            for e in range(indptr[u], indptr[u + 1]):
                v = heads[e]
                nd = top_f + weight[e]
                if nd < df[v]:
                    df[v] = nd
                    pf[v] = e
                    sf = _push(hk_f, hv_f, sf, nd, v)
                    if nd + db[v] < best:
                        best = nd + db[v]
                        meet = v
        else:
            u = hv_b[0]
            sb = _pop(hk_b, hv_b, sb)
            if done_b[u] or top_b > db[u]:
                continue
            done_b[u] = True
            for k in range(rev_indptr[u], rev_indptr[u + 1]):
                e = rev_edge[k]
                v = tails[e]
                nd = top_b + weight[e]
                if nd < db[v]:
                    db[v] = nd
                    pb[v] = e
                    sb = _push(hk_b, hv_b, sb, nd, v)
                    if df[v] + nd < best:
                        best = df[v] + nd
                        meet = v
    return best, meet, pf, pb


@njit(cache=True, nogil=True)
def _concentration(conc: np.ndarray, horizon_s: np.ndarray, e: int, t: float) -> float:
    # conc has shape (n_horizons, n_edges); t is seconds after the field's time.
    h = horizon_s.shape[0]
    if t <= horizon_s[0]:
        return conc[0, e]
    for k in range(1, h):
        if t <= horizon_s[k]:
            w = (t - horizon_s[k - 1]) / (horizon_s[k] - horizon_s[k - 1])
            return (1.0 - w) * conc[k - 1, e] + w * conc[k, e]
    return conc[h - 1, e]


@njit(cache=True, nogil=True)
def time_dependent(
    indptr: np.ndarray,
    heads: np.ndarray,
    duration_s: np.ndarray,
    inhaled_m3: np.ndarray,
    static_weight: np.ndarray,
    dose_factor: float,
    conc: np.ndarray,
    horizon_s: np.ndarray,
    depart_s: float,
    sources: np.ndarray,
    source_cost: np.ndarray,
    source_time: np.ndarray,
    targets: np.ndarray,
    target_edge: np.ndarray,
    target_frac: np.ndarray,
) -> tuple[float, int, np.ndarray]:
    """Least ``dose_factor × dose + static`` cost with concentrations taken at the time the
    rider is on each edge; returns ``(cost, target_index, pred)``.

    ``sources`` start with ``source_cost`` and ``source_time`` (seconds since departure,
    for the partial first edge); reaching ``targets[i]`` adds the partial last edge
    ``target_edge[i]`` travelled for fraction ``target_frac[i]``.
    """
    n = indptr.shape[0] - 1
    m = heads.shape[0]
    dist = np.full(n, INF)
    tim = np.zeros(n)
    pred = np.full(n, -1, np.int64)
    done = np.zeros(n, np.bool_)
    hk = np.empty(m + len(sources) + 1)
    hv = np.empty(m + len(sources) + 1, np.int64)
    size = 0
    for i in range(len(sources)):
        s = sources[i]
        if source_cost[i] < dist[s]:
            dist[s] = source_cost[i]
            tim[s] = source_time[i]
            size = _push(hk, hv, size, dist[s], s)
    best = INF
    best_i = -1
    while size > 0:
        d = hk[0]
        u = hv[0]
        size = _pop(hk, hv, size)
        if d >= best:
            break
        if done[u] or d > dist[u]:
            continue
        done[u] = True
        for i in range(len(targets)):
            if targets[i] == u:
                e = target_edge[i]
                f = target_frac[i]
                c = _concentration(conc, horizon_s, e, depart_s + tim[u] + 0.5 * f * duration_s[e])
                total = d + f * (dose_factor * c * inhaled_m3[e] + static_weight[e])
                if total < best:
                    best = total
                    best_i = i
        for e in range(indptr[u], indptr[u + 1]):
            v = heads[e]
            # concentration at the middle of the edge: the trapezoid of the interpolation
            c = _concentration(conc, horizon_s, e, depart_s + tim[u] + 0.5 * duration_s[e])
            nd = d + dose_factor * c * inhaled_m3[e] + static_weight[e]
            if nd < dist[v]:
                dist[v] = nd
                tim[v] = tim[u] + duration_s[e]
                pred[v] = e
                size = _push(hk, hv, size, nd, v)
    return best, best_i, pred
