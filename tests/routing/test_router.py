"""The router on the embedded Helsinki network: exactness end to end, profiles, fields."""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from airpath import (
    CoordinateError,
    FieldError,
    OutsideCoverageError,
    PollutionField,
    ProfileError,
    Router,
    SameEndpointsError,
)
from airpath.routing import profiles as pf
from oracles import min_csr

A = (60.1780, 24.9370)
B = (60.1655, 24.9520)


@pytest.fixture(scope="module", params=["small", "large"])
def router(helsinki, request):
    """Both CCH bindings (see routing/cch_large.py) answer every router test."""
    return Router(helsinki, engine=request.param)


def _pairs(network, k, seed=3):
    rng = np.random.default_rng(seed)
    lat, lon = np.asarray(network.node_lat), np.asarray(network.node_lon)
    out = []
    while len(out) < k:
        a, b = rng.integers(0, network.n_nodes, 2)
        if a != b:
            # A little off the node, so snapping lands inside edges.
            out.append(((lat[a] + 2e-5, lon[a] - 2e-5), (lat[b] - 2e-5, lon[b] + 2e-5)))
    return out


def _oracle(network, w, route):
    """scipy's Dijkstra between the first and last full edges' nodes, plus the partial
    pieces the route itself starts and ends with: no shorter connection may exist."""
    g = min_csr(network.n_nodes, network.edge_tail, network.edge_head, w)
    legs = route.legs
    first, last = legs[0], legs[-1]
    start = network.edge_head[first.edge_id]
    end = network.edge_tail[last.edge_id]
    return float(dijkstra(g, indices=start)[end])


@pytest.mark.parametrize(
    "profile", ["shortest", "fastest", "least_exposure", "balanced", "comfort"]
)
def test_routes_are_exact_against_scipy(router, helsinki, profile):
    spec = pf.make_spec(profile, "no2", helsinki.pollutants)
    w = pf.weights(helsinki, spec, np.asarray(helsinki.edge_prior_ugm3[0], dtype=float))
    checked = 0
    for o, d in _pairs(helsinki, 25):
        try:
            route = router.route(o, d, profile).best
        except SameEndpointsError:
            continue
        if len(route.legs) < 3:
            continue
        inner = sum(w[leg.edge_id] for leg in route.legs[1:-1])
        assert inner == pytest.approx(_oracle(helsinki, w, route), rel=1e-6, abs=1e-6)
        checked += 1
    assert checked >= 15


def test_route_carries_every_field(router):
    result = router.route(A, B, "least_exposure", alternatives=2)
    r = result.best
    assert r.distance_m > 1000
    assert r.duration_s > 0
    assert r.dose_ug > 0
    assert r.mean_concentration_ugm3 > 0
    assert r.climb_m == 0
    assert r.descent_m == 0
    assert r.dose_change_pct <= 0  # never more dose than the shortest route
    assert abs(sum(leg.length_m for leg in r.legs) - r.distance_m) < 1e-6
    assert r.steps[0].maneuver["type"] == "depart"
    assert r.steps[-1].maneuver["type"] == "arrive"
    assert any(s.name for s in r.steps)
    feature = result.to_geojson()["features"][0]
    assert feature["geometry"]["type"] == "LineString"
    assert len(feature["geometry"]["coordinates"]) >= 2
    for key in (
        "distance_m",
        "duration_s",
        "dose_ug",
        "mean_concentration_ugm3",
        "dose_change_pct",
        "distance_change_pct",
        "climb_m",
        "descent_m",
        "legs",
        "steps",
    ):
        assert key in feature["properties"]
    assert result.to_geojson()["properties"]["field_version"] == "prior"


def test_route_starts_and_ends_at_the_snapped_points(router):
    result = router.route(A, B, "shortest")
    coords = result.best.coordinates
    assert coords[0] == pytest.approx((result.origin[1], result.origin[0]), abs=1e-6)
    assert coords[-1] == pytest.approx((result.destination[1], result.destination[0]), abs=1e-6)


def test_least_exposure_never_breathes_more_than_any_other_profile(router, helsinki):
    for o, d in _pairs(helsinki, 15, seed=11):
        try:
            doses = {p: router.route(o, d, p).best.dose_ug for p in pf.PROFILES}
        except SameEndpointsError:
            continue
        assert doses["least_exposure"] <= min(doses.values()) + 1e-6


def test_alternatives_really_differ(router, helsinki):
    from airpath.routing.alternatives import MAX_SHARED, shared_fraction

    result = router.route(A, B, "least_exposure", alternatives=3)
    assert 2 <= len(result.routes) <= 4
    seg = np.asarray(helsinki.edge_segment)
    for i, a in enumerate(result.routes):
        for b in result.routes[i + 1 :]:
            assert shared_fraction(a, b, seg) <= MAX_SHARED
    assert all(r.label for r in result.routes)


@pytest.mark.parametrize("minutes", [None, 7.5])
def test_changes_are_against_the_shortest_route_exactly(helsinki, minutes):
    # The shortest route is compared by its totals alone (see _Query.totals): they are
    # the numbers the whole shortest route has, also at the rider's times on a forecast.
    router = Router(helsinki)
    valid = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    router.apply_field(_field(helsinki, [1.0, 2.0, 0.5], "fc", valid))
    depart = None if minutes is None else valid + dt.timedelta(minutes=minutes)
    same = 0
    for o, d in _pairs(helsinki, 25, seed=5):
        try:
            shortest = router.route(o, d, "shortest", depart=depart).best
        except SameEndpointsError:
            continue
        for profile in ("fastest", "least_exposure", "comfort"):
            r = router.route(o, d, profile, depart=depart).best
            assert r.distance_change_pct == 100 * (r.distance_m - shortest.distance_m) / (
                shortest.distance_m
            )
            assert r.dose_change_pct == 100 * (r.dose_ug - shortest.dose_ug) / shortest.dose_ug
            if r.edge_path == shortest.edge_path:
                same += 1
                assert r.dose_change_pct == r.distance_change_pct == 0.0
                assert r.label == profile.replace("_", " ")
            else:
                assert "vs shortest" in r.label
    assert same  # some profile takes the shortest route, and says so


def test_max_detour_bounds_distance(router):
    free = router.route(A, B, "least_exposure").best
    shortest = router.route(A, B, "shortest").best
    for pct in (0.0, 1.0, 5.0):
        r = router.route(A, B, "balanced", max_detour_pct=pct).best
        assert r.distance_m <= shortest.distance_m * (1 + pct / 100) + 1e-6
        assert r.dose_ug >= free.dose_ug - 1e-9
    assert router.route(A, B, "balanced", max_detour_pct=0.0).best.dose_ug <= shortest.dose_ug


def _field(network, factors, version="v1", valid_at=None):
    base = np.asarray(network.edge_prior_ugm3, dtype=float)
    conc = {p: np.stack([base[k] * f for f in factors]) for k, p in enumerate(network.pollutants)}
    return PollutionField.create(
        version,
        valid_at or dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC),
        conc,
        n_edges=network.n_edges,
        horizons_min=tuple(15.0 * i for i in range(len(factors))),
    )


def test_apply_field_changes_routes_and_rejects_bad_fields(helsinki):
    router = Router(helsinki)
    before = router.route(A, B, "least_exposure").best
    # Make the least-exposure route's own streets very dirty: the route must change.
    conc = np.asarray(helsinki.edge_prior_ugm3, dtype=float).copy()
    conc[:, before.edge_ids] *= 20
    field = PollutionField.create(
        "dirty",
        dt.datetime.now(dt.UTC),
        dict(zip(helsinki.pollutants, conc, strict=True)),
        n_edges=helsinki.n_edges,
    )
    router.apply_field(field)
    after = router.route(A, B, "least_exposure")
    assert after.field_version == "dirty"
    assert after.best.edge_ids != before.edge_ids
    with pytest.raises(FieldError):
        PollutionField.create(
            "bad", dt.datetime.now(dt.UTC), {"no2": conc[0][:-1]}, n_edges=helsinki.n_edges
        )
    nan = conc[0].copy()
    nan[5] = np.nan
    with pytest.raises(FieldError, match="NaN"):
        PollutionField.create(
            "bad", dt.datetime.now(dt.UTC), {"no2": nan}, n_edges=helsinki.n_edges
        )
    with pytest.raises(FieldError, match="negative"):
        PollutionField.create(
            "bad", dt.datetime.now(dt.UTC), {"no2": -conc[0]}, n_edges=helsinki.n_edges
        )
    with pytest.raises(FieldError):
        router.apply_field(
            PollutionField.create(
                "short", dt.datetime.now(dt.UTC), {"no2": conc[0][:100]}, n_edges=100
            )
        )
    assert router.route(A, B, "least_exposure").field_version == "dirty"  # kept serving


@pytest.mark.parametrize("engine", ["small", "large"])
def test_queries_never_see_a_mix_of_fields(helsinki, engine):
    """Two fields whose doses differ by a known factor: every answer must be entirely
    one or the other, while a thread keeps swapping them."""
    router = Router(helsinki, engine=engine)
    one = _field(helsinki, [1.0], "one")
    two = _field(helsinki, [3.0], "two")
    router.apply_field(one)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            router.apply_field(two)
            router.apply_field(one)

    t = threading.Thread(target=swap)
    t.start()
    try:
        seen = set()
        n = 0
        deadline = time.monotonic() + 60.0
        # At least 200 answers, and on until both fields were served (how often each is
        # live depends on how the threads are scheduled).
        while n < 200 or (len(seen) < 2 and time.monotonic() < deadline):
            n += 1
            res = router.route(A, B, "least_exposure")
            seen.add(res.field_version)
            conc = np.array([leg.concentration_ugm3 for leg in res.best.legs])
            prior = np.asarray(helsinki.edge_prior_ugm3[0])[res.best.edge_ids]
            factor = 3.0 if res.field_version == "two" else 1.0
            np.testing.assert_allclose(conc, prior * factor, rtol=1e-5)
    finally:
        stop.set()
        t.join()
    assert seen == {"one", "two"}


def test_time_dependent_uses_the_forecast_at_the_time_of_passage(helsinki):
    router = Router(helsinki)
    valid = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    router.apply_field(_field(helsinki, [1.0, 1.0, 4.0, 4.0], "fc", valid))
    early = router.route(A, B, "least_exposure", depart=valid).best
    late = router.route(A, B, "least_exposure", depart=valid + dt.timedelta(minutes=45)).best
    assert early.engine == late.engine == "time-dependent"
    # The ride takes ~10 min: departing at +0 it stays within the 1 × plateau, at +45 min
    # within the 4 × one, so the doses are exactly the static dose and four times it.
    static = router.route(A, B, "least_exposure").best
    assert early.duration_s < 15 * 60
    assert early.dose_ug == pytest.approx(static.dose_ug, rel=1e-9)
    assert late.dose_ug == pytest.approx(4 * static.dose_ug, rel=1e-9)
    assert early.dose_ug < late.dose_ug
    # Concentrations grow along the route when departing into the ramp.
    mid = router.route(A, B, "least_exposure", depart=valid + dt.timedelta(minutes=10)).best
    c = [
        leg.concentration_ugm3 / max(p, 1e-9)
        for leg, p in zip(
            mid.legs, np.asarray(helsinki.edge_prior_ugm3[0])[mid.edge_ids], strict=True
        )
    ]
    assert c[-1] > c[0]


@pytest.mark.parametrize("engine", ["small", "large"])
def test_background_customisation_keeps_answers_consistent(helsinki, engine):
    router = Router(helsinki, engine=engine)
    router.apply_field(_field(helsinki, [2.0], "bg"), background=True)
    assert router.route(A, B, "balanced", balance=0.3).field_version == "bg"  # flexible: new
    router.wait_customised(30)
    assert router.route(A, B, "least_exposure").field_version == "bg"


@pytest.mark.parametrize("engine", ["small", "large"])
def test_fields_faster_than_customisation_share_one_worker(helsinki, engine):
    """Ten fields in a burst: at most one customising thread at any time, and the preset
    queries end on the last field."""
    router = Router(helsinki, engine=engine)
    most = 0
    for k in range(10):
        router.apply_field(_field(helsinki, [1.0 + 0.1 * k], f"burst-{k}"), background=True)
        busy = [t for t in threading.enumerate() if t.name == "cch-customise" and t.is_alive()]
        most = max(most, len(busy))
    assert most <= 1
    for _ in range(100):
        router.wait_customised(30)
        if router._worker is None:
            break
    assert router.route(A, B, "least_exposure").field_version == "burst-9"


@pytest.mark.parametrize(
    ("o", "d", "error"),
    [
        ((float("nan"), 24.94), B, CoordinateError),
        ((95.0, 24.94), B, CoordinateError),
        ((60.30, 24.94), B, OutsideCoverageError),
        (A, A, SameEndpointsError),
    ],
)
def test_bad_points(router, o, d, error):
    with pytest.raises(error):
        router.route(o, d)


def test_bad_profile_options(router):
    with pytest.raises(ProfileError, match="unknown profile"):
        router.route(A, B, "scenic")
    with pytest.raises(ProfileError, match="pollutant"):
        router.route(A, B, pollutant="so2")
    with pytest.raises(ProfileError):
        router.route(A, B, alternatives=9)
    with pytest.raises(ProfileError):
        router.route(A, B, depart=dt.datetime(2026, 5, 1, 8))


def test_points_on_junctions_route_node_to_node_exactly(router, helsinki):
    """A point exactly on a junction may leave or reach it along any edge, whichever
    segment it snapped to (regression: one-way segments forced detours)."""
    n = helsinki.n_nodes
    w = np.asarray(helsinki.edge_length_m, dtype=float)
    g = min_csr(n, helsinki.edge_tail, helsinki.edge_head, w)
    lat, lon = np.asarray(helsinki.node_lat), np.asarray(helsinki.node_lon)
    rng = np.random.default_rng(5)
    sources = rng.integers(0, n, 60)
    dist = dijkstra(g, indices=sources)
    checked = 0
    for i, s in enumerate(sources):
        t = int(rng.integers(0, n))
        if t == s:
            continue
        res = router.route((lat[s], lon[s]), (lat[t], lon[t]), "shortest")
        if max(res.meta["snap_distance_m"]) > 0.01:
            continue  # a node on walk-only ways: the router snaps onto a rideable street
        assert res.best.distance_m == pytest.approx(dist[i, t], rel=1e-9, abs=1e-6)
        checked += 1
    assert checked >= 15


def test_unknown_engine(helsinki):
    with pytest.raises(ProfileError, match="engine"):
        Router(helsinki, engine="fast")


def test_engine_choice(helsinki):
    from airpath.routing.cch_large import LargeCCHEngine
    from airpath.routing.engines import CCHEngine

    assert isinstance(Router(helsinki, engine="large").engine, LargeCCHEngine)
    assert isinstance(Router(helsinki).engine, CCHEngine)  # small network: auto picks it


WARM_UP_PROBE = """
import sys
from airpath import Router, load_network
from airpath.routing import detail_kernels, kernels, snapgrid

router = Router(load_network(sys.argv[1]))
kernels_used = {
    "snap": snapgrid._locate,
    "detail": detail_kernels.route_detail,
    "pieces": detail_kernels.piece_table,
    "engine answer": detail_kernels.between_table,
    "engine answer totals": detail_kernels.between_totals,
    "totals": detail_kernels.table_totals,
    "times": detail_kernels.at_times,
    "per-request search": kernels.bidirectional,
}
before = sorted(k for k, f in kernels_used.items() if f.signatures)
router.warm_up()
after = sorted(k for k, f in kernels_used.items() if f.signatures)
print(before, after)
"""


def test_warm_up_readies_every_kernel_a_request_uses(helsinki_dir):
    # A fresh interpreter: in this one, earlier tests have already compiled the kernels.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", WARM_UP_PROBE, str(helsinki_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.strip()
    assert out == (
        "[] ['detail', 'engine answer', 'engine answer totals', 'per-request search', "
        "'pieces', 'snap', 'times', 'totals']"
    )
