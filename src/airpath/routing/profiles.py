"""Routing profiles: what a route minimises, as per-edge weights.

=================  ==============================================================
profile            edge weight
=================  ==============================================================
``shortest``       length (m)
``fastest``        duration (s), grade-aware
``least_exposure`` inhaled dose (µg) of the chosen pollutant
``balanced``       ``(1 − α) × dose / r + α × duration`` (s); ``r`` is the network's
                   mean dose rate (µg/s), so α = 0.5 values a second of riding like
                   the dose of an average second; per request, ``max_detour_pct``
                   instead asks for the least dose within that extra distance
``comfort``        duration × a factor by cycle infrastructure (separate cycleways
                   preferred, busy roads avoided), walking the bike × 1.5
=================  ==============================================================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from airpath.errors import ProfileError
from airpath.network.segments import INFRA_CLASSES, MODE_WALK
from airpath.network.store import Network

FloatArray = npt.NDArray[np.float64]

PROFILES: tuple[str, ...] = ("shortest", "fastest", "least_exposure", "balanced", "comfort")
EXPOSURE_PROFILES = frozenset({"least_exposure", "balanced"})
DEFAULT_BALANCE = 0.5

COMFORT_FACTOR: dict[str, float] = {
    "cycleway": 1.0,
    "track": 1.05,
    "path": 1.15,
    "lane": 1.2,
    "shared": 1.35,
    "busy": 2.0,
}
WALK_FACTOR = 1.5


@dataclass(frozen=True)
class ProfileSpec:
    """A validated routing request's cost: the profile, the pollutant it is about and the
    balance α for ``balanced``. ``key`` names the CCH metric that serves it, if any."""

    name: str
    pollutant: str
    balance: float = DEFAULT_BALANCE

    @functools.cached_property  # read several times per request; the spec is frozen
    def key(self) -> str:
        if self.name in EXPOSURE_PROFILES:
            return f"{self.name}:{self.pollutant}:{self.balance:g}"
        return self.name

    @property
    def uses_field(self) -> bool:
        return self.name in EXPOSURE_PROFILES


@functools.lru_cache(maxsize=1024)
def make_spec(
    name: str, pollutant: str, pollutants: tuple[str, ...], balance: float | None = None
) -> ProfileSpec:
    """Validate a profile request; raise :class:`ProfileError` with the allowed values.

    Cached: requests ask for the same few specs over and over (a spec is immutable)."""
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    if pollutant not in pollutants:
        raise ProfileError(
            f"unknown pollutant {pollutant!r}; the field has {', '.join(pollutants)}"
        )
    b = DEFAULT_BALANCE if balance is None else float(balance)
    if not 0.0 <= b <= 1.0:
        raise ProfileError(f"balance must be between 0 and 1, got {balance}")
    return ProfileSpec(name, pollutant, b)


def static_weights(network: Network, name: str) -> FloatArray:
    """Weights of the profiles that do not depend on pollution."""
    if name == "shortest":
        return np.asarray(network.edge_length_m, dtype=np.float64)
    if name == "fastest":
        return np.asarray(network.edge_duration_s, dtype=np.float64)
    if name == "comfort":
        factor = np.array([COMFORT_FACTOR[c] for c in INFRA_CLASSES])[
            np.asarray(network.edge_infra, dtype=np.int64)
        ]
        walk = np.where(np.asarray(network.edge_mode) == MODE_WALK, WALK_FACTOR, 1.0)
        return np.asarray(network.edge_duration_s) * factor * walk
    raise ProfileError(f"{name} depends on the pollution field")


def dose_terms(
    network: Network, spec: ProfileSpec, conc_now: FloatArray
) -> tuple[float, FloatArray]:
    """``(dose_factor, static)`` so that weight = dose_factor × dose + static."""
    duration = np.asarray(network.edge_duration_s, dtype=np.float64)
    if spec.name == "least_exposure":
        return 1.0, np.zeros_like(duration)
    dose = conc_now * np.asarray(network.edge_inhaled_m3)
    rate = float(dose.sum() / duration.sum())
    return (1.0 - spec.balance) / max(rate, 1e-12), spec.balance * duration


def weights(network: Network, spec: ProfileSpec, conc_now: FloatArray) -> FloatArray:
    """Per-edge weights of ``spec`` with the current concentrations."""
    if not spec.uses_field:
        return static_weights(network, spec.name)
    factor, static = dose_terms(network, spec, conc_now)
    return factor * conc_now * np.asarray(network.edge_inhaled_m3) + static
