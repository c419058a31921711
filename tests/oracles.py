"""Textbook oracles shared by the routing tests."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix


def min_csr(n, tail, head, w):
    """A scipy matrix keeping the cheapest of parallel edges (csr_matrix would add them);
    1e-300 keeps zero-weight edges, which scipy would otherwise drop."""
    best: dict[tuple[int, int], float] = {}
    for a, b, c in zip(
        np.asarray(tail).tolist(), np.asarray(head).tolist(), np.asarray(w).tolist(), strict=True
    ):
        best[(a, b)] = min(best.get((a, b), np.inf), c)
    if not best:
        return csr_matrix((n, n))
    rows, cols, vals = zip(*[(a, b, c + 1e-300) for (a, b), c in best.items()], strict=True)
    return csr_matrix((vals, (rows, cols)), shape=(n, n))
