"""Placeholder annual-mean pollution priors for networks without a city map.

Until a land-use-regression prior replaces it, every OSM edge gets

    prior = urban background + road-class increment × infrastructure factor

Background: typical annual means at European urban background stations (EEA, *Air quality
in Europe 2022*, figures for NO2, PM10, PM2.5: about 20, 20 and 11 µg/m³). The increment is
what traffic on the road itself adds at the kerb, largest on trunk and primary roads
(annual NO2 at European urban traffic stations runs roughly 1.5–2.5 × background; PM
increments are smaller because much of PM is regional). A cycleway or track separated
from the carriageway sees part of the increment only (``INFRA_FACTOR``), as measured
in on-bike studies that compare separated tracks with riding in traffic.

These are placeholders, coarse by design; they make every network routable by dose.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from airpath.network.segments import INFRA_CLASSES, POLLUTANTS

BACKGROUND_UGM3: dict[str, float] = {"no2": 20.0, "pm10": 20.0, "pm25": 11.0}

# Kerbside increment over background by highway value, µg/m³ (no2, pm10, pm25).
ROAD_INCREMENT_UGM3: dict[str, tuple[float, float, float]] = {
    "trunk": (30.0, 8.0, 4.0),
    "trunk_link": (25.0, 7.0, 3.5),
    "primary": (25.0, 7.0, 3.5),
    "primary_link": (20.0, 6.0, 3.0),
    "secondary": (16.0, 5.0, 2.5),
    "secondary_link": (14.0, 4.0, 2.0),
    "tertiary": (10.0, 3.0, 1.5),
    "tertiary_link": (8.0, 2.5, 1.2),
    "unclassified": (5.0, 1.5, 0.8),
    "road": (5.0, 1.5, 0.8),
    "residential": (3.0, 1.0, 0.5),
    "service": (2.0, 0.8, 0.4),
    "living_street": (1.0, 0.5, 0.2),
}
"""Anything not listed (cycleways, paths, footways, tracks) adds nothing."""

INFRA_FACTOR: dict[str, float] = {
    "cycleway": 0.5,
    "track": 0.8,
    "lane": 1.0,
    "shared": 1.0,
    "busy": 1.0,
    "path": 0.5,
}


def placeholder_prior(
    highway: npt.NDArray[np.object_], infra: npt.NDArray[np.int8]
) -> dict[str, npt.NDArray[np.float64]]:
    """Prior annual mean (µg/m³) per segment for each pollutant of ``POLLUTANTS``.

    >>> p = placeholder_prior(np.array(["primary", "cycleway"], dtype=object),
    ...                       np.array([4, 0], dtype=np.int8))
    >>> p["no2"].tolist()
    [45.0, 20.0]
    """
    factor = np.array([INFRA_FACTOR[c] for c in INFRA_CLASSES])[infra.astype(np.int64)]
    kinds, inverse = np.unique(highway.astype(str), return_inverse=True)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for k, pollutant in enumerate(POLLUTANTS):
        inc = np.array([ROAD_INCREMENT_UGM3.get(h, (0.0, 0.0, 0.0))[k] for h in kinds])
        out[pollutant] = BACKGROUND_UGM3[pollutant] + inc[inverse] * factor
    return out
