"""The bicycle profile: OpenStreetMap tags to travel modes, infrastructure class and speed.

The rules are data (``profiles/bicycle.toml``, or any TOML file of the same shape given by
the user), read into a frozen :class:`BicycleProfile`; :meth:`BicycleProfile.classify` is
the one place that interprets tags. Tag semantics follow the OpenStreetMap wiki pages
``Key:highway``, ``Key:access``, ``Key:oneway``, ``Key:cycleway`` and ``Bicycle``.

>>> profile = load_profile()
>>> rule = profile.classify({"highway": "residential", "oneway": "yes"})
>>> (rule.mode_fwd, rule.mode_bwd, INFRA_CLASSES[rule.infra])
(1, 2, 'shared')
>>> rule = profile.classify({"highway": "residential", "oneway": "yes",
...                          "cycleway": "opposite_lane"})
>>> (rule.mode_fwd, rule.mode_bwd, INFRA_CLASSES[rule.infra])
(1, 1, 'lane')
>>> profile.classify({"highway": "motorway"}) is None
True
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from airpath.errors import SourceError
from airpath.network.segments import INFRA_CLASSES, MODE_NONE, MODE_RIDE, MODE_WALK

_ONEWAY_JUNCTIONS = ("roundabout", "circular")  # one-way by implication (OSM wiki)
_CYCLEWAY_KEYS = ("cycleway", "cycleway:both", "cycleway:right", "cycleway:left")


@dataclass(frozen=True)
class WayRule:
    """What the profile makes of one way: modes along/against its node order, the cycle
    infrastructure class (index into ``INFRA_CLASSES``), riding speed on the flat and the
    surface tag it was computed with."""

    mode_fwd: int
    mode_bwd: int
    infra: int
    speed_kph: float
    surface: str


@dataclass(frozen=True)
class BicycleProfile:
    """Rules for bicycles, as read from a profile TOML file (see ``profiles/bicycle.toml``)."""

    name: str
    ride_speed_kph: Mapping[str, float]
    walk_highways: frozenset[str]
    walk_speed_kph: float
    steps_speed_kph: float
    walk_against_oneway: bool
    walk_against_oneway_excluded: frozenset[str]
    access_denied: frozenset[str]
    bicycle_allowed: frozenset[str]
    bicycle_denied: frozenset[str]
    bicycle_dismount: frozenset[str]
    excluded_tags: frozenset[tuple[str, str]]
    oneway_forward: frozenset[str]
    oneway_backward: frozenset[str]
    contraflow_cycleway: frozenset[str]
    oneway_bicycle_exempt: frozenset[str]
    oneway_implied: frozenset[str]
    track_values: frozenset[str]
    lane_values: frozenset[str]
    busy_highways: frozenset[str]
    path_highways: frozenset[str]
    surface_factor: Mapping[str, float]

    @property
    def highways(self) -> frozenset[str]:
        """Every highway value that can end up in the network."""
        return frozenset(self.ride_speed_kph) | self.walk_highways

    def classify(self, tags: Mapping[str, str]) -> WayRule | None:
        """The rule for a way with these tags, or None when bicycles cannot use it at all."""
        highway = tags.get("highway", "")
        if highway not in self.ride_speed_kph and highway not in self.walk_highways:
            return None
        if any(tags.get(k) == v for k, v in self.excluded_tags):
            return None
        bicycle = tags.get("bicycle", "")
        if bicycle in self.bicycle_denied:
            return None
        if tags.get("access", "") in self.access_denied and bicycle not in self.bicycle_allowed:
            return None

        ride = highway in self.ride_speed_kph or bicycle in self.bicycle_allowed
        if bicycle in self.bicycle_dismount:
            ride = False
        mode = MODE_RIDE if ride else MODE_WALK
        mode_fwd, mode_bwd = mode, mode

        oneway = tags.get("oneway", "")
        one_fwd = oneway in self.oneway_forward or (
            oneway == ""
            and (tags.get("junction") in _ONEWAY_JUNCTIONS or highway in self.oneway_implied)
        )
        one_bwd = oneway in self.oneway_backward
        bike_oneway = tags.get("oneway:bicycle", "")  # one-way for bicycles only
        if bike_oneway in self.oneway_forward:
            one_fwd, one_bwd = True, False
        elif bike_oneway in self.oneway_backward:
            one_fwd, one_bwd = False, True
        exempt = tags.get("oneway:bicycle", "") in self.oneway_bicycle_exempt or any(
            tags.get(k, "") in self.contraflow_cycleway for k in _CYCLEWAY_KEYS
        )
        if ride and (one_fwd or one_bwd) and not exempt:
            push = self.walk_against_oneway and highway not in self.walk_against_oneway_excluded
            against = MODE_WALK if push else MODE_NONE
            if one_fwd:
                mode_bwd = against
            else:
                mode_fwd = against

        surface = tags.get("surface", "")
        if ride:
            base = self.ride_speed_kph.get(highway, self.ride_speed_kph.get("path", 13.0))
            default = self.surface_factor["unpaved"] if highway == "track" else 1.0
            speed_kph = base * self.surface_factor.get(surface, default)
        elif highway == "steps":
            speed_kph = self.steps_speed_kph
        else:
            speed_kph = self.walk_speed_kph
        return WayRule(mode_fwd, mode_bwd, self._infra(highway, tags), speed_kph, surface)

    def _infra(self, highway: str, tags: Mapping[str, str]) -> int:
        cycleway = {tags.get(k, "") for k in _CYCLEWAY_KEYS}
        if highway == "cycleway" or (
            highway in self.path_highways and tags.get("bicycle") == "designated"
        ):
            name = "cycleway"
        elif highway in self.path_highways:
            name = "path"
        elif cycleway & self.track_values:
            name = "track"
        elif cycleway & self.lane_values:
            name = "lane"
        elif highway in self.busy_highways:
            name = "busy"
        else:
            name = "shared"
        return INFRA_CLASSES.index(name)


def load_profile(path: str | Path | None = None) -> BicycleProfile:
    """Read a bicycle profile from ``path``, or the bundled default when None."""
    try:
        if path is None:
            text = resources.files("airpath.network").joinpath("profiles/bicycle.toml").read_text()
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
        return _from_dict(data)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"cannot read bicycle profile {path or 'bicycle.toml'}: {exc}") from exc


def _from_dict(d: dict[str, Any]) -> BicycleProfile:
    def fs(values: list[str]) -> frozenset[str]:
        return frozenset(str(v) for v in values)

    excluded = frozenset(tuple(str(t).split("=", 1)) for t in d["access"]["excluded_tags"])
    if any(len(t) != 2 for t in excluded):
        raise ValueError("access.excluded_tags entries must look like key=value")
    return BicycleProfile(
        name=str(d["name"]),
        ride_speed_kph={str(k): float(v) for k, v in d["ride_speed_kph"].items()},
        walk_highways=fs(d["walk"]["highways"]),
        walk_speed_kph=float(d["walk"]["speed_kph"]),
        steps_speed_kph=float(d["walk"]["steps_speed_kph"]),
        walk_against_oneway=bool(d["walk"]["against_oneway"]),
        walk_against_oneway_excluded=fs(d["walk"]["against_oneway_excluded"]),
        access_denied=fs(d["access"]["denied"]),
        bicycle_allowed=fs(d["access"]["bicycle_allowed"]),
        bicycle_denied=fs(d["access"]["bicycle_denied"]),
        bicycle_dismount=fs(d["access"]["bicycle_dismount"]),
        excluded_tags=excluded,  # type: ignore[arg-type]
        oneway_forward=fs(d["oneway"]["forward"]),
        oneway_backward=fs(d["oneway"]["backward"]),
        contraflow_cycleway=fs(d["oneway"]["contraflow_cycleway"]),
        oneway_bicycle_exempt=fs(d["oneway"]["bicycle_exempt"]),
        oneway_implied=fs(d["oneway"]["implied"]),
        track_values=fs(d["infrastructure"]["track_values"]),
        lane_values=fs(d["infrastructure"]["lane_values"]),
        busy_highways=fs(d["infrastructure"]["busy_highways"]),
        path_highways=fs(d["infrastructure"]["path_highways"]),
        surface_factor={str(k): float(v) for k, v in d["surface_factor"].items()},
    )
