"""PNG plots of an evaluation: street maps of a per-edge value, incident time series.

Matplotlib with the Agg backend (files only, no display, no network). Maps draw every
street segment from the network's geometry (``geom_lonlat`` / ``geom_offsets``) as one
:class:`~matplotlib.collections.LineCollection`, coloured by the mean of the segment's
directed edges; the axes are scaled by ``1 / cos(latitude)`` so distances look right.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from airpath.air.observations import FloatArray
from airpath.network.store import Network

__all__ = ["plot_edge_map", "plot_incident_series", "segment_values"]

DPI = 110


def segment_values(network: Network, edge_values: FloatArray) -> FloatArray:
    """Per-segment mean of a per-edge array (NaN for a segment without edges)."""
    seg = np.asarray(network.edge_segment, dtype=np.int64)
    n_seg = int(network.manifest["counts"]["segments"])
    total = np.bincount(seg, weights=edge_values, minlength=n_seg)
    count = np.bincount(seg, minlength=n_seg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def plot_edge_map(
    network: Network,
    edge_values: FloatArray,
    path: str | Path,
    *,
    title: str,
    label: str,
    diverging: bool = False,
    limits: tuple[float, float] | None = None,
) -> Path:
    """Draw every street coloured by ``edge_values`` (one per directed edge) to a PNG.

    ``diverging`` centres a red–blue scale on 0 (for errors); ``limits`` fixes the colour
    range (to compare several maps), else the 2nd–98th percentiles are used.
    """
    values = segment_values(network, np.asarray(edge_values, dtype=np.float64))
    off = np.asarray(network.geom_offsets, dtype=np.int64)
    lonlat = np.asarray(network.geom_lonlat, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(values) & (np.diff(off) >= 2))
    lines = [lonlat[off[s] : off[s + 1]] for s in keep]
    if limits is None:
        lo, hi = np.percentile(values[keep], [2.0, 98.0]) if len(keep) else (0.0, 1.0)
        if diverging:
            hi = max(abs(lo), abs(hi), 1e-9)
            lo = -hi
        limits = (float(lo), float(max(hi, lo + 1e-9)))
    fig, ax = plt.subplots(figsize=(8, 8), dpi=DPI)
    try:
        coll = LineCollection(
            lines, cmap="RdBu_r" if diverging else "viridis", linewidths=0.8, array=values[keep]
        )
        coll.set_clim(*limits)
        ax.add_collection(coll)
        ax.autoscale()
        lat0 = float(np.mean(lonlat[:, 1])) if len(lonlat) else 0.0
        ax.set_aspect(1.0 / math.cos(math.radians(lat0)))
        ax.set_xlabel("longitude (°)")
        ax.set_ylabel("latitude (°)")
        ax.set_title(title)
        fig.colorbar(coll, ax=ax, label=label, shrink=0.8)
        out = Path(path)
        fig.savefig(out, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out


def plot_incident_series(
    times: Sequence[dt.datetime],
    series: dict[str, FloatArray],
    path: str | Path,
    *,
    edge_ids: Sequence[int],
    incident_span: tuple[dt.datetime, dt.datetime],
    first_observed: dt.datetime | None,
    title: str,
) -> Path:
    """Truth and estimates at a few edges over time, one panel per edge, to a PNG.

    ``series`` maps a label (``"truth"``, ``"ours"``, …) to an array of shape
    ``(len(times), len(edge_ids))`` in µg/m³.
    """
    n = max(len(edge_ids), 1)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.6 * n), dpi=DPI, sharex=True, squeeze=False)
    try:
        x = list(times)
        styles = {"truth": "k-", "ours": "C0-o", "inverse_distance": "C1--"}
        for row, edge in enumerate(edge_ids):
            ax = axes[row, 0]
            ax.axvspan(*incident_span, color="0.9", label="incident")
            if first_observed is not None:
                ax.axvline(first_observed, color="C3", lw=1, ls=":", label="first reading")
            for name, arr in series.items():
                ax.plot(x, arr[:, row], styles.get(name, "-"), ms=3, lw=1.2, label=name)
            ax.set_ylabel("NO2 (µg/m³)")
            ax.set_title(f"edge {edge}", fontsize=9)
        axes[0, 0].legend(fontsize=8, loc="upper left")
        axes[-1, 0].set_xlabel("time (UTC)")
        fig.suptitle(title)
        fig.autofmt_xdate()
        out = Path(path)
        fig.savefig(out, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
