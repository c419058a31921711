"""Property tests: every engine against scipy's textbook Dijkstra on random graphs."""

from __future__ import annotations

import numpy as np
import pytest
import routingkit_cch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from airpath.routing import kernels
from airpath.routing.engines import INF_WEIGHT, weight_scale
from oracles import min_csr


def _random_graph(seed: int, n: int, m: int, integer: bool):
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    keep = tail != head
    tail, head = tail[keep], head[keep]
    w = rng.integers(0, 1000, len(tail)).astype(np.float64) if integer else rng.random(len(tail))
    order = np.lexsort((head, tail))
    tail, head, w = tail[order], head[order], w[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(tail, minlength=n))])
    rev_edge = np.lexsort((tail, head))
    rev_indptr = np.concatenate([[0], np.cumsum(np.bincount(head, minlength=n))])
    return tail, head, w, indptr, rev_edge, rev_indptr


def _scipy_multi(n, tail, head, w, sources, s_cost, targets, t_cost):
    """Textbook oracle: a super source and super sink around the graph."""
    src, dst = n, n + 1
    t2 = np.concatenate([tail, np.full(len(sources), src), np.asarray(targets)])
    h2 = np.concatenate([head, np.asarray(sources), np.full(len(targets), dst)])
    w2 = np.concatenate([w, s_cost, t_cost])
    return float(dijkstra(min_csr(n + 2, t2, h2, w2), indices=src)[dst])


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    density=st.floats(0.5, 4.0),
    k_src=st.integers(1, 2),
    k_tgt=st.integers(1, 2),
)
def test_bidirectional_matches_scipy(seed, n, density, k_src, k_tgt):
    m = max(1, int(n * density))
    tail, head, w, indptr, rev_edge, rev_indptr = _random_graph(seed, n, m, integer=False)
    rng = np.random.default_rng(seed + 1)
    sources = rng.integers(0, n, k_src)
    targets = rng.integers(0, n, k_tgt)
    s_cost, t_cost = rng.random(k_src), rng.random(k_tgt)
    cost, meet, pf, pb = kernels.bidirectional(
        indptr, head, rev_indptr, rev_edge, tail, w, sources, s_cost, targets, t_cost
    )
    want = _scipy_multi(n, tail, head, w, sources.tolist(), s_cost, targets.tolist(), t_cost)
    assert cost == pytest.approx(want, rel=1e-12, abs=1e-9)
    if np.isfinite(want):
        # The unwound path is a real path whose cost is the reported one.
        total, node = 0.0, meet
        while pf[node] >= 0:
            total += w[pf[node]]
            node = tail[pf[node]]
        total += s_cost[[i for i, s in enumerate(sources) if s == node]].min()
        node = meet
        while pb[node] >= 0:
            total += w[pb[node]]
            node = head[pb[node]]
        total += t_cost[[i for i, t in enumerate(targets) if t == node]].min()
        assert total == pytest.approx(cost, rel=1e-12, abs=1e-9)
    else:
        assert meet == -1


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), density=st.floats(1.0, 4.0))
def test_cch_matches_scipy(seed, n, density):
    m = max(1, int(n * density))
    tail, head, w, *_ = _random_graph(seed, n, m, integer=True)
    rng = np.random.default_rng(seed)
    lat, lon = rng.random(n), rng.random(n)
    order = routingkit_cch.compute_order_inertial(
        n, tail.tolist(), head.tolist(), lat.tolist(), lon.tolist()
    )
    cch = routingkit_cch.CCH(order, tail.tolist(), head.tolist(), False)
    metric = routingkit_cch.CCHMetric(cch, w.astype(np.uint32))
    query = routingkit_cch.CCHQuery(metric)
    full = dijkstra(min_csr(n, tail, head, w))
    for s, t in rng.integers(0, n, (10, 2)):
        res = query.run(int(s), int(t))
        got, arcs = res.distance, list(res.arc_path)
        del res
        want = full[s, t]
        if np.isinf(want):
            assert got is None
        else:
            assert got == round(want)
            assert sum(w[a] for a in arcs) == got  # the arc path is real and costs that much
            if arcs:
                assert tail[arcs[0]] == s
                assert head[arcs[-1]] == t


def test_weight_scale_keeps_paths_below_infinity():
    w = np.array([0.5, 3.0, 1200.0])
    scale = weight_scale(w, hop_bound=1000)
    assert (1000 + 2) * w.max() * scale < INF_WEIGHT
    assert scale > 1.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40))
def test_time_dependent_equals_static_when_field_is_constant(seed, n):
    """With the same concentration at every horizon the time-dependent search is a plain
    Dijkstra on dose: compare with scipy."""
    tail, head, _, indptr, _, _ = _random_graph(seed, n, 3 * n, integer=False)
    rng = np.random.default_rng(seed)
    m = len(tail)
    duration, inhaled = rng.random(m) * 60, rng.random(m) * 0.05
    c = rng.random(m) * 50
    conc = np.stack([c, c, c])
    horizons = np.array([0.0, 900.0, 1800.0])
    s, t = rng.integers(0, n, 2)
    cost, idx, _pred = kernels.time_dependent(
        indptr,
        head,
        duration,
        inhaled,
        np.zeros(m),
        1.0,
        conc,
        horizons,
        0.0,
        np.array([s]),
        np.array([0.0]),
        np.array([0.0]),
        np.array([t]),
        np.array([0]),
        np.array([0.0]),
    )
    want = _scipy_multi(n, tail, head, c * inhaled, [int(s)], [0.0], [int(t)], [0.0])
    assert cost == pytest.approx(want, rel=1e-12, abs=1e-9)
    assert (idx >= 0) == np.isfinite(want)


@pytest.mark.parametrize("engine_name", ["small", "large"])
def test_both_cch_bindings_match_scipy_on_a_real_network(helsinki, engine_name):
    """Node-to-node and weighted multi-source queries of both engines against scipy."""
    from airpath.routing.cch_large import LargeCCHEngine
    from airpath.routing.engines import CCHEngine, Endpoint

    engine = LargeCCHEngine(helsinki) if engine_name == "large" else CCHEngine(helsinki)
    w = np.asarray(helsinki.edge_length_m, dtype=np.float64)
    metric = engine.customise(w, "shortest")
    tail, head = np.asarray(helsinki.edge_tail), np.asarray(helsinki.edge_head)
    iw = np.floor(w * metric.scale)
    full = dijkstra(min_csr(helsinki.n_nodes, tail, head, iw), indices=np.arange(40))
    rng = np.random.default_rng(8)
    piece = (0, 0.0, 0.0)
    for s in range(40):
        t, t2 = (int(x) for x in rng.integers(0, helsinki.n_nodes, 2))
        dist, _ends, arcs = metric.query([Endpoint(s, 0.0, piece)], [Endpoint(t, 0.0, piece)])
        assert dist == round(full[s, t])
        assert iw[arcs].sum() == dist
        # Two weighted targets: the best of the two, costs included.
        extra = rng.uniform(0, 500, 2)
        dist2, _ends, _arcs = metric.query(
            [Endpoint(s, 0.0, piece)],
            [Endpoint(t, float(extra[0]), piece), Endpoint(t2, float(extra[1]), piece)],
        )
        want = min(
            full[s, t] + int(extra[0] * metric.scale), full[s, t2] + int(extra[1] * metric.scale)
        )
        assert dist2 == round(want)
