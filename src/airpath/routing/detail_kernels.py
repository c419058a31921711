"""Numba kernels that turn a route's pieces into numbers: totals, points, steps' runs.

Why compiled: a median route has some 60 to 100 pieces and 100 to 400 points, and
assembling it with NumPy took tens of array calls per route (gathers, a cut per partly
travelled edge, bearings, rounding), each costing 1–3 µs of dispatch for a few dozen
values. One pass over the pieces does the same arithmetic in a fraction of that. The
kernels repeat the float operations of the NumPy code they replace, in the same order,
so the values are the same bit for bit (tests/routing/test_result.py checks them
against that code, kept in tests/result_reference.py), except the bearings inside the
steps (see :func:`_bearing`).

Plain arrays in, plain arrays out; :mod:`.result` builds the Python objects.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Rows of piece_table()'s table, one column per piece: the part of its edge's inhaled
# volume, climb, descent, length and duration it travels, its dose, the concentration it
# is at, and the fractions of the edge it starts and ends at. One reduction over the
# first TOTALS rows gives a route's totals; the rows from LENGTH on are a leg's numbers.
INHALED, CLIMB, DESCENT, LENGTH, DURATION, DOSE, CONC, START, END = range(9)
TOTALS = DOSE + 1
# A piece: (edge, start fraction, end fraction). The edge quantities a piece table takes,
# per edge: length, duration, inhaled volume, climb, descent, concentration.
Piece = tuple[int, float, float]
Quantities = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# A piece covering at most this fraction of its edge is left out of a route.
MIN_PIECE = 1e-12
# The first codes of a run's maneuver are the compass direction a route departs in
# (0 = north, clockwise by 45°); the turns follow: code TURN + one of TURN_KINDS.
TURN = 8
TURN_KINDS = (
    "straight",
    "slight right",
    "slight left",
    "right",
    "left",
    "sharp right",
    "sharp left",
    "uturn",
)


@njit(cache=True, nogil=True)
def _put_piece(per: np.ndarray, i: int, k: int, a: float, b: float, quantities: Quantities) -> None:
    """Column ``i`` of a piece table: edge ``k`` from fraction ``a`` to ``b``."""
    length, duration, inhaled, climb, descent, conc = quantities
    f = b - a
    per[INHALED, i] = f * inhaled[k]
    per[CLIMB, i] = f * climb[k]
    per[DESCENT, i] = f * descent[k]
    per[LENGTH, i] = f * length[k]
    per[DURATION, i] = f * duration[k]
    per[DOSE, i] = conc[k] * per[INHALED, i]
    per[CONC, i] = conc[k]
    per[START, i] = a
    per[END, i] = b


@njit(cache=True, nogil=True)
def piece_table(
    e: np.ndarray, a: np.ndarray, b: np.ndarray, quantities: Quantities
) -> tuple[np.ndarray, np.ndarray]:
    """The edges of the pieces ``(e[i], a[i], b[i])`` longer than ``MIN_PIECE`` of their
    edge, and the table of those pieces (rows INHALED to END): the fraction
    ``b[i] - a[i]`` of each edge quantity, and the dose at concentration ``conc[e[i]]``
    (the concentration times the inhaled volume)."""
    keep = np.flatnonzero(b - a > MIN_PIECE)
    n = keep.shape[0]
    edge = e if n == e.shape[0] else e[keep]  # all kept: the array goes back as it came
    per = np.empty((END + 1, n))
    for i in range(n):
        j = keep[i]
        _put_piece(per, i, e[j], a[j], b[j], quantities)
    return edge, per


@njit(cache=True, nogil=True)
def between_table(
    edges: np.ndarray, first: Piece, last: Piece, quantities: Quantities
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`piece_table` of the pieces ``first``, the whole of each of ``edges``, then
    ``last`` (a hierarchy's answer), without making their three arrays first."""
    first_e, first_a, first_b = first
    last_e, last_a, last_b = last
    kept_first = first_b - first_a > MIN_PIECE
    kept_last = last_b - last_a > MIN_PIECE
    n = edges.shape[0] + kept_first + kept_last
    edge = np.empty(n, np.int64)
    per = np.empty((END + 1, n))
    i = 0
    if kept_first:
        edge[0] = first_e
        _put_piece(per, 0, first_e, first_a, first_b, quantities)
        i = 1
    for k in edges:
        edge[i] = k
        _put_piece(per, i, k, 0.0, 1.0, quantities)
        i += 1
    if kept_last:
        edge[i] = last_e
        _put_piece(per, i, last_e, last_a, last_b, quantities)
    return edge, per


@njit(cache=True, nogil=True)
def _block_sum(x: np.ndarray, lo: int, n: int) -> float:
    """``x[lo:lo + n].sum()`` for ``n <= 128`` as NumPy sums it: in order below eight
    values, else eight running sums combined pairwise, then the rest in order."""
    if n < 8:
        s = -0.0 if n else 0.0  # -0.0 + x is x, as NumPy's reduction starts from x
        for i in range(lo, lo + n):
            s += x[i]
        return s
    r = x[lo : lo + 8].copy()
    m = n - n % 8
    i = 8
    while i < m:
        for j in range(8):
            r[j] += x[lo + i + j]
        i += 8
    s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        s += x[lo + i]
        i += 1
    return s


@njit(cache=True, nogil=True)
def _pairwise_sum(x: np.ndarray) -> float:
    """``x.sum()`` of a contiguous row, bit for bit as NumPy computes it: its pairwise
    summation, which splits a row of more than 128 values into halves (the first a
    multiple of 8 long) and adds their sums.

    The recursion is walked with an explicit stack: numba's cache cannot hold a
    recursive function."""
    n = x.shape[0]
    if n <= 128:
        return _block_sum(x, 0, n)
    # Nodes (start, length, children done?) and the sums of finished subtrees; a tree
    # of depth d keeps at most 2d + 1 nodes and d + 1 sums, and d < 64.
    node_lo = np.empty(130, np.int64)
    node_n = np.empty(130, np.int64)
    node_done = np.empty(130, np.bool_)
    sums = np.empty(66)
    top, depth = 0, 0
    node_lo[0], node_n[0], node_done[0] = 0, n, False
    top = 1
    while top:
        top -= 1
        lo, m, done = node_lo[top], node_n[top], node_done[top]
        if m <= 128:
            sums[depth] = _block_sum(x, lo, m)
            depth += 1
        elif done:
            depth -= 1
            sums[depth - 1] = sums[depth - 1] + sums[depth]
        else:
            half = m // 2
            half -= half % 8
            node_lo[top], node_n[top], node_done[top] = lo, m, True  # add after both
            node_lo[top + 1], node_n[top + 1], node_done[top + 1] = lo + half, m - half, False
            node_lo[top + 2], node_n[top + 2], node_done[top + 2] = lo, half, False
            top += 3
    return sums[0]


@njit(cache=True, nogil=True)
def table_totals(per: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """The sums of ``per``'s first TOTALS rows (``per[:TOTALS].sum(axis=1)``, the same
    bits): inhaled volume, climb, descent, length, duration and dose."""
    return (
        _pairwise_sum(per[INHALED]),
        _pairwise_sum(per[CLIMB]),
        _pairwise_sum(per[DESCENT]),
        _pairwise_sum(per[LENGTH]),
        _pairwise_sum(per[DURATION]),
        _pairwise_sum(per[DOSE]),
    )


@njit(cache=True, nogil=True)
def between_totals(
    edges: np.ndarray, first: Piece, last: Piece, quantities: Quantities
) -> tuple[np.ndarray, float, float]:
    """:func:`between_table`'s edges and the length and dose of its pieces (the sums
    :func:`table_totals` gives): what a route is compared against needs only these, from
    one call."""
    edge, per = between_table(edges, first, last, quantities)
    return edge, _pairwise_sum(per[LENGTH]), _pairwise_sum(per[DOSE])


@njit(cache=True, nogil=True)
def at_times(
    per: np.ndarray, edge: np.ndarray, conc: np.ndarray, horizons_s: np.ndarray, offset_s: float
) -> None:
    """Give each piece of ``per`` the concentration at the middle of its time on its
    edge, departing ``offset_s`` after the field's time, interpolated linearly between
    the horizons of ``conc`` (horizons, edges) and held beyond them; its dose follows.

    The arithmetic the NumPy assembly did (``_interp_columns`` in
    tests/result_reference.py) on ``offset_s + cumsum(duration) - duration / 2``, value
    by value."""
    n_h = horizons_s.shape[0]
    elapsed = 0.0
    for i in range(per.shape[1]):
        d = per[DURATION, i]
        elapsed += d
        t = offset_s + elapsed - 0.5 * d
        k = edge[i]
        if n_h == 1:
            c = conc[0, k]
        else:
            j = min(max(np.searchsorted(horizons_s, t), 1), n_h - 1)
            h0, h1 = horizons_s[j - 1], horizons_s[j]
            w = min(max((t - h0) / (h1 - h0), 0.0), 1.0)
            c = (1.0 - w) * conc[j - 1, k] + w * conc[j, k]
        per[CONC, i] = c
        per[DOSE, i] = c * per[INHALED, i]


@njit(cache=True, nogil=True)
def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``np.interp(x, xp, fp)`` for one ``x`` and non-decreasing ``xp``: the same
    branches and float operations as NumPy's implementation (its binary search with a
    guess lands on the last ``j`` with ``xp[j] <= x`` like this one)."""
    last = xp.shape[0] - 1
    if x > xp[last]:
        return fp[last]
    if x < xp[0]:
        return fp[0]
    j = np.searchsorted(xp, x, side="right") - 1
    if j == last or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    y = slope * (x - xp[j]) + fp[j]
    if math.isnan(y):
        y = slope * (x - xp[j + 1]) + fp[j + 1]
        if math.isnan(y) and fp[j] == fp[j + 1]:
            y = fp[j]
    return y


@njit(cache=True, nogil=True)
def _cut_into(out: np.ndarray, at: int, line: np.ndarray, a: float, b: float) -> int:
    """Write the part of polyline ``line`` (k, 2) between fractions ``a < b`` of its
    planar length into ``out[at:]``; return the row after the last one written.

    The cut of the NumPy assembly: lengths on a plane scaled by the cosine of the first
    point's latitude, the ends interpolated, the points strictly between them kept, and
    a line without length collapsed to its first point twice.
    """
    k = line.shape[0]
    xs = np.ascontiguousarray(line[:, 0])
    ys = np.ascontiguousarray(line[:, 1])
    scale = math.cos(math.radians(line[0, 1]))
    cum = np.zeros(k)
    for i in range(1, k):
        cum[i] = cum[i - 1] + math.hypot((xs[i] - xs[i - 1]) * scale, ys[i] - ys[i - 1])
    total = cum[k - 1]
    if total == 0.0:
        out[at, 0], out[at, 1] = line[0, 0], line[0, 1]
        out[at + 1, 0], out[at + 1, 1] = line[0, 0], line[0, 1]
        return at + 2
    da, db = a * total, b * total
    out[at, 0], out[at, 1] = _interp(da, cum, xs), _interp(da, cum, ys)
    at += 1
    for i in range(k):
        if da < cum[i] < db:
            out[at, 0], out[at, 1] = xs[i], ys[i]
            at += 1
    out[at, 0], out[at, 1] = _interp(db, cum, xs), _interp(db, cum, ys)
    return at + 1


@njit(cache=True, nogil=True)
def path_points(
    e: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    edge_segment: np.ndarray,
    edge_reversed: np.ndarray,
    geom_offsets: np.ndarray,
    geom_lonlat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The (lon, lat) points of pieces ``(e[i], a[i], b[i])`` in travel order.

    Returns ``(points, bounds)``: piece ``i`` is ``points[bounds[i]:bounds[i + 1]]``, the
    whole geometry of its edge (its segment's, backwards on a reversed edge) where the
    piece covers the edge, else the part it travels (:func:`_cut_into`).
    """
    n = e.shape[0]
    room = 0
    for i in range(n):
        s = edge_segment[e[i]]
        room += geom_offsets[s + 1] - geom_offsets[s] + 2  # a cut adds at most two
    points = np.empty((room, 2))
    bounds = np.zeros(n + 1, np.int64)
    at = 0
    for i in range(n):
        s = edge_segment[e[i]]
        line = geom_lonlat[geom_offsets[s] : geom_offsets[s + 1]]
        if edge_reversed[e[i]]:
            line = line[::-1]
        if a[i] <= 0.0 and b[i] >= 1.0:
            for j in range(line.shape[0]):
                points[at, 0], points[at, 1] = line[j, 0], line[j, 1]
                at += 1
        else:
            at = _cut_into(points, at, line, a[i], b[i])
        bounds[i + 1] = at
    return points[:at], bounds


@njit(cache=True, nogil=True)
def _bearing(p: np.ndarray, q: np.ndarray) -> float:
    """Initial great-circle bearing (degrees from north) from point ``p`` to ``q``.

    The formula the NumPy assembly evaluated with ufuncs, in the same order, but with
    the C library's sin, cos and atan2, whose results differ from NumPy's SIMD versions
    in the last bit now and then (and NumPy's differ between CPUs). The formula
    subtracts nearly equal products, so such a bit becomes about 1e-16 / (the segment's
    length in radians) of the bearing: under 1e-9° for segments of 10 m and more. A
    bearing reaches a route only rounded to whole degrees and compared with 20°, 45°,
    135° and 170°, which a difference that small changes only at a boundary.
    """
    lon1, lat1 = math.radians(p[0]), math.radians(p[1])
    lon2, lat2 = math.radians(q[0]), math.radians(q[1])
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


@njit(cache=True, nogil=True)
def _turn(before: float, after: float) -> int:
    """The index in TURN_KINDS of a turn from bearing ``before`` onto ``after``."""
    turn = (after - before + 540.0) % 360.0 - 180.0  # -180..180, positive = right
    size = abs(turn)
    left = 0 if turn > 0 else 1
    if size < 20:
        return 0
    if size < 45:
        return 1 + left
    if size < 135:
        return 3 + left
    if size < 170:
        return 5 + left
    return 7


@njit(cache=True, nogil=True)
def route_detail(
    e: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    edge_segment: np.ndarray,
    edge_reversed: np.ndarray,
    geom_offsets: np.ndarray,
    geom_lonlat: np.ndarray,
    segment_name: np.ndarray,
    name_key: np.ndarray,
    edge_mode: np.ndarray,
    walk_mode: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Everything but the Python objects of a route's coordinates, legs and steps.

    Returns ``(coordinates, name, walk, runs, locations)``:

    * ``coordinates`` (k, 2): the points in travel order rounded to 7 decimals, each
      piece after the first without its first point (pieces meet at junctions);
    * ``name`` and ``walk`` (n,): each piece's index into the street names and whether
      the bike is walked there;
    * ``runs`` (r + 1, 4): one row per step. A step but the last is a run of pieces on
      the same street (names equal when their ``name_key`` is) in the same mode; its row
      holds its first piece, its maneuver code (the compass direction of the first run,
      ``TURN`` plus the index in TURN_KINDS after), the bearing leaving it and the one
      before it (the previous run's arriving bearing, 0 for the first), rounded to whole
      degrees. The last row is the arrival: ``n``, -1, 0 and the last run's arriving
      bearing;
    * ``locations`` (r + 1, 2): where each step is, the last one the route's last point.
    """
    points, bounds = path_points(e, a, b, edge_segment, edge_reversed, geom_offsets, geom_lonlat)
    n = e.shape[0]
    coordinates = np.empty((points.shape[0] - n + 1, 2))
    at = 0
    for i in range(n):
        for j in range(bounds[i] + (i > 0), bounds[i + 1]):
            # np.round(x, 7): multiply, round half to even, divide.
            coordinates[at, 0] = np.rint(points[j, 0] * 1e7) / 1e7
            coordinates[at, 1] = np.rint(points[j, 1] * 1e7) / 1e7
            at += 1
    name = segment_name[edge_segment[e]]
    walk = edge_mode[e] == walk_mode
    starts = [0]
    for i in range(1, n):
        if name_key[name[i]] != name_key[name[i - 1]] or walk[i] != walk[i - 1]:
            starts.append(i)
    starts.append(n)
    r = len(starts) - 1
    runs = np.empty((r + 1, 4), np.int64)
    locations = np.empty((r + 1, 2))
    before = 0.0
    for k in range(r):
        first, last = bounds[starts[k]], bounds[starts[k + 1]]
        after = _bearing(points[first], points[first + 1])
        code = round(after / 45.0) % 8 if k == 0 else TURN + _turn(before, after)
        runs[k, 0], runs[k, 1] = starts[k], code
        runs[k, 2], runs[k, 3] = round(after), round(before)
        locations[k] = points[first]
        before = _bearing(points[last - 2], points[last - 1])
    runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3] = n, -1, 0, round(before)
    locations[r] = points[points.shape[0] - 1]
    return coordinates, name, walk, runs, locations
