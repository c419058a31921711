"""A uniform grid over line pieces, for exact nearest-piece queries in compiled code.

The street lines (in a planar projection, metres) are cut into their straight pieces, and
each piece is listed in every grid cell its bounding box touches. A query visits the
cells in square rings around the point's cell, nearest ring first, and stops once the
best distance found is no more than the distance to the next ring: a piece with a point
closer than that would lie in a cell already visited. The answer is therefore the true
nearest piece (the first by index among equally near ones within the rings visited), as
an R-tree nearest-neighbour search gives, without building Python objects per query.

Ring ``r`` holds the cells at Chebyshev distance ``r`` from the point's cell; every point
of such a cell is at least ``(r - 1) × cell`` metres away, which gives both the stopping
rule and the last ring worth visiting for a search radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TARGET_PER_CELL = 4.0  # pieces per occupied cell the cell size aims at
MIN_CELL_M = 10.0
MAX_CELL_M = 1000.0


@dataclass(frozen=True)
class PieceGrid:
    """Pieces ``(x0[k], y0[k]) → (x0[k] + dx[k], y0[k] + dy[k])`` of lines, in a grid.

    Piece ``k`` belongs to line ``line[k]`` and starts ``along[k]`` metres along it;
    pieces are numbered line by line in order, so a lower piece number means a lower
    line, or the same line nearer its start.
    """

    x0: FloatArray
    y0: FloatArray
    dx: FloatArray
    dy: FloatArray
    length: FloatArray
    along: FloatArray
    line: IntArray
    line_length: FloatArray
    origin: tuple[float, float]
    cell_m: float
    shape: tuple[int, int]  # cells along x, along y
    cell_start: IntArray  # CSR over cells (row-major, y then x)
    cell_items: IntArray

    @classmethod
    def build(cls, xy: FloatArray, offsets: IntArray) -> PieceGrid:
        """Lines ``xy[offsets[i]:offsets[i + 1]]`` (metres), each of two points or more."""
        offsets = np.asarray(offsets, dtype=np.int64)
        n_lines = len(offsets) - 1
        counts = np.diff(offsets)
        if n_lines == 0 or (counts < 2).any():
            raise ValueError("every line needs two points or more")
        # Piece k joins point p[k] to p[k] + 1; no piece starts at a line's last point.
        last = np.zeros(len(xy), dtype=bool)
        last[offsets[1:] - 1] = True
        start = np.flatnonzero(~last)
        x0, y0 = xy[start, 0].copy(), xy[start, 1].copy()
        dx, dy = xy[start + 1, 0] - x0, xy[start + 1, 1] - y0
        length = np.sqrt(dx * dx + dy * dy)
        line = np.repeat(np.arange(n_lines, dtype=np.int64), counts - 1)
        first_piece = np.concatenate([[0], np.cumsum(counts - 1)])
        along, line_length = _along(length, first_piece)

        lo = xy.min(axis=0)
        hi = xy.max(axis=0)
        area = max(float((hi[0] - lo[0]) * (hi[1] - lo[1])), 1.0)
        cell = math.sqrt(area * TARGET_PER_CELL / max(len(start), 1))
        cell = min(max(cell, MIN_CELL_M), MAX_CELL_M)
        nx = int((hi[0] - lo[0]) // cell) + 1
        ny = int((hi[1] - lo[1]) // cell) + 1
        cell_start, cell_items = _fill(x0, y0, dx, dy, float(lo[0]), float(lo[1]), cell, nx, ny)
        return cls(
            x0,
            y0,
            dx,
            dy,
            length,
            along,
            line,
            line_length,
            (float(lo[0]), float(lo[1])),
            cell,
            (nx, ny),
            cell_start,
            cell_items,
        )

    def locate(self, px: FloatArray, py: FloatArray, max_distance_m: float) -> FloatArray:
        """Per point, a row ``(line, fraction of the line's length, x, y, distance)`` of
        the nearest point on any line; ``line`` is -1 when none is within
        ``max_distance_m``. One compiled call (a route's two ends cost microseconds)."""
        return _locate(
            np.ascontiguousarray(px, dtype=np.float64),
            np.ascontiguousarray(py, dtype=np.float64),
            self._arrays(),
            (self.along, self.length, self.line, self.line_length),
            float(max_distance_m),
        )

    def _arrays(self) -> tuple[Any, ...]:
        return (
            self.x0,
            self.y0,
            self.dx,
            self.dy,
            self.cell_start,
            self.cell_items,
            self.origin[0],
            self.origin[1],
            self.cell_m,
            self.shape[0],
            self.shape[1],
        )


@njit(cache=True)
def _along(length: FloatArray, first_piece: IntArray) -> tuple[FloatArray, FloatArray]:
    """Metres along its line at which each piece starts, and each line's length (summed
    piece by piece in order, so a line's last piece ends exactly at its length)."""
    along = np.empty(len(length))
    n_lines = len(first_piece) - 1
    total = np.empty(n_lines)
    for i in range(n_lines):
        s = 0.0
        for k in range(first_piece[i], first_piece[i + 1]):
            along[k] = s
            s += length[k]
        total[i] = s
    return along, total


@njit(cache=True)
def _cell_range(
    x0: float, y0: float, dx: float, dy: float, gx: float, gy: float, cell: float, nx: int, ny: int
) -> tuple[int, int, int, int]:
    i0 = int((min(x0, x0 + dx) - gx) // cell)
    i1 = int((max(x0, x0 + dx) - gx) // cell)
    j0 = int((min(y0, y0 + dy) - gy) // cell)
    j1 = int((max(y0, y0 + dy) - gy) // cell)
    return max(i0, 0), min(i1, nx - 1), max(j0, 0), min(j1, ny - 1)


@njit(cache=True)
def _fill(
    x0: FloatArray,
    y0: FloatArray,
    dx: FloatArray,
    dy: FloatArray,
    gx: float,
    gy: float,
    cell: float,
    nx: int,
    ny: int,
) -> tuple[IntArray, IntArray]:
    """CSR of the pieces whose bounding box touches each cell (pieces in order)."""
    count = np.zeros(nx * ny + 1, dtype=np.int64)
    for k in range(len(x0)):
        i0, i1, j0, j1 = _cell_range(x0[k], y0[k], dx[k], dy[k], gx, gy, cell, nx, ny)
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                count[j * nx + i + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    items = np.empty(start[-1], dtype=np.int64)
    for k in range(len(x0)):
        i0, i1, j0, j1 = _cell_range(x0[k], y0[k], dx[k], dy[k], gx, gy, cell, nx, ny)
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                c = j * nx + i
                items[fill[c]] = k
                fill[c] += 1
    return start, items


@njit(cache=True)
def _locate(
    px: FloatArray,
    py: FloatArray,
    grid: tuple[Any, ...],
    lines: tuple[FloatArray, FloatArray, IntArray, FloatArray],
    max_d: float,
) -> FloatArray:
    x0, y0, dx, dy = grid[0], grid[1], grid[2], grid[3]
    along, length, line, line_length = lines
    out = np.empty((len(px), 5))
    for q in range(len(px)):
        k, t, d = _nearest_one(px[q], py[q], grid, max_d)
        if k < 0:
            out[q, 0], out[q, 1], out[q, 2], out[q, 3], out[q, 4] = -1.0, 0.0, 0.0, 0.0, d
            continue
        total = line_length[line[k]]
        f = (along[k] + t * length[k]) / total if total > 0.0 else 0.0
        out[q, 0] = line[k]
        out[q, 1] = min(max(f, 0.0), 1.0)
        out[q, 2] = x0[k] + t * dx[k]
        out[q, 3] = y0[k] + t * dy[k]
        out[q, 4] = d
    return out


@njit(cache=True)
def _nearest_one(
    x: float, y: float, grid: tuple[Any, ...], max_d: float
) -> tuple[int, float, float]:
    """(piece, fraction of the piece, distance) of the nearest piece; piece -1 and
    distance inf when none is within ``max_d``."""
    x0, y0, dx, dy, cell_start, cell_items, gx, gy, cell, nx, ny = grid
    cx = math.floor((x - gx) / cell)
    cy = math.floor((y - gy) / cell)
    # The last ring that can hold a point within max_d, and the last with any cell.
    r_last = int(max_d / cell) + 1
    cover = max(abs(cx), abs(cx - (nx - 1)), abs(cy), abs(cy - (ny - 1)))
    r_last = min(r_last, cover)
    best = -1
    best_d2 = np.inf
    best_t = 0.0
    for r in range(r_last + 1):
        for j in range(cy - r, cy + r + 1):
            if j < 0 or j >= ny:
                continue
            edge_row = j == cy - r or j == cy + r
            i = cx - r
            while i <= cx + r:
                if 0 <= i < nx:
                    c = j * nx + i
                    for m in range(cell_start[c], cell_start[c + 1]):
                        k = cell_items[m]
                        ax, ay, ex, ey = x0[k], y0[k], dx[k], dy[k]
                        len2 = ex * ex + ey * ey
                        t = 0.0
                        if len2 > 0.0:
                            t = ((x - ax) * ex + (y - ay) * ey) / len2
                            t = min(max(t, 0.0), 1.0)
                        qx = x - (ax + t * ex)
                        qy = y - (ay + t * ey)
                        d2 = qx * qx + qy * qy
                        if d2 < best_d2 or (d2 == best_d2 and k < best):
                            best, best_d2, best_t = k, d2, t
                # Inner rows of the ring: only its first and last columns.
                i = i + 1 if edge_row else (cx + r if i == cx - r else i + 1)
        reach = r * cell
        if best >= 0 and best_d2 <= reach * reach:
            break
    if best < 0 or best_d2 > max_d * max_d:
        return -1, 0.0, np.inf
    return best, best_t, math.sqrt(best_d2)
