"""Versioned model artifacts of ``airpath train`` and the registry the stream reads them from.

Layout of a registry directory::

    20261121T003105Z-1a2b3c4d/model.json   one directory per version (JSON, no pickle)
    LATEST                                 the newest version's name

A version is the UTC creation time (``%Y%m%dT%H%M%SZ``, so names sort by time) and the
first 8 hex digits of the SHA-256 of the artifact's content. :meth:`ModelRegistry.save`
writes a hidden temporary directory, fsyncs it, renames it into place (atomic within a
file system) and then replaces ``LATEST`` the same way, so a reader polling
:meth:`ModelRegistry.latest_version` never sees a partial artifact. One writer at a time.

:func:`adopt` applies an artifact to a running :class:`~airpath.pipeline.model.StreamModel`
between batches; the adopted parameters and profile are part of the model state saved with
each batch, so they survive a restart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airpath.air.kriging import KrigingParams
from airpath.air.training import DiurnalProfile, FittedModel
from airpath.durable import fsync_dir, write_atomic
from airpath.errors import InputError, PipelineConfigError
from airpath.pipeline.model import StreamModel

ARTIFACT_FORMAT = 1
MODEL_FILE = "model.json"
LATEST_FILE = "LATEST"
_VERSION = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
# Parameters the kriging reads afresh at every batch, hence safe to change mid-stream
# (``time_constant_s`` is baked into the smoother, ``n_neighbours`` is an integer).
ADOPTABLE_KEYS = frozenset(
    {"residual_sd", "nugget_sd", "length_scale_m", "level_sd", "residual_decay_min", "staleness_s"}
)


@dataclass(frozen=True, eq=False)
class ModelArtifact:
    """A fitted model: kriging overrides, diurnal profile, data range and metrics."""

    version: str
    created_at: dt.datetime
    network_key: str
    data_from: dt.datetime
    data_to: dt.datetime
    kriging: Mapping[str, float]
    profile: DiurnalProfile
    metrics: Mapping[str, float]

    @classmethod
    def create(
        cls, fitted: FittedModel, network_key: str, *, created_at: dt.datetime | None = None
    ) -> ModelArtifact:
        created = (created_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
        draft = cls(
            "",
            created,
            network_key,
            fitted.data_from,
            fitted.data_to,
            dict(fitted.kriging),
            fitted.profile,
            dict(fitted.metrics),
        )
        digest = hashlib.sha256(draft.to_json().encode()).hexdigest()[:8]
        return dataclasses.replace(draft, version=f"{created:%Y%m%dT%H%M%SZ}-{digest}")

    def params(self, base: KrigingParams | None = None) -> KrigingParams:
        """``base`` (default :class:`KrigingParams`) with this artifact's overrides."""
        overrides: dict[str, Any] = dict(self.kriging)
        return dataclasses.replace(base or KrigingParams(), **overrides)

    def to_json(self) -> str:
        prof = self.profile
        body = {
            "format": ARTIFACT_FORMAT,
            "version": self.version,
            "created_at": _iso(self.created_at),
            "network_key": self.network_key,
            "data_from": _iso(self.data_from),
            "data_to": _iso(self.data_to),
            "kriging": dict(sorted(self.kriging.items())),
            "diurnal": {
                "utc_offset_h": prof.utc_offset_h,
                "pollutants": {
                    p: {"level": prof.level[k].tolist(), "hours": prof.hours[k].tolist()}
                    for k, p in enumerate(prof.pollutants)
                },
            },
            "metrics": dict(sorted(self.metrics.items())),
        }
        return json.dumps(body, indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str, source: str = "model artifact") -> ModelArtifact:
        """Parse and validate; any problem is one :class:`PipelineConfigError` line."""
        try:
            body = json.loads(text)
            if body.get("format") != ARTIFACT_FORMAT:
                raise ValueError(
                    f"format {body.get('format')}, this airpath reads {ARTIFACT_FORMAT}"
                )
            diurnal = body["diurnal"]
            names = tuple(diurnal["pollutants"])
            profile = DiurnalProfile(
                names,
                np.array(
                    [diurnal["pollutants"][p]["level"] for p in names], dtype=np.float64
                ).reshape(len(names), 2, 24),
                np.array(
                    [diurnal["pollutants"][p]["hours"] for p in names], dtype=np.int64
                ).reshape(len(names), 2, 24),
                float(diurnal["utc_offset_h"]),
            )
            kriging = {str(k): float(v) for k, v in body["kriging"].items()}
            unknown = set(kriging) - ADOPTABLE_KEYS
            if unknown or not all(math.isfinite(v) and v > 0 for v in kriging.values()):
                raise ValueError(f"bad kriging parameters {body['kriging']}")
            if not np.isfinite(profile.level).all():
                raise ValueError("non-finite diurnal levels")
            artifact = cls(
                str(body["version"]),
                _time(body["created_at"]),
                str(body["network_key"]),
                _time(body["data_from"]),
                _time(body["data_to"]),
                kriging,
                profile,
                {str(k): float(v) for k, v in body["metrics"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise PipelineConfigError(
                f"{source}: corrupt model artifact ({type(exc).__name__}: {detail})"
            ) from None
        if not _VERSION.match(artifact.version):
            raise PipelineConfigError(f"{source}: bad model version {artifact.version!r}")
        return artifact


class ModelRegistry:
    """Model artifacts in one directory (layout in the module doc)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def versions(self) -> list[str]:
        """Saved versions, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if _VERSION.match(p.name) and (p / MODEL_FILE).is_file()
        )

    def save(self, artifact: ModelArtifact) -> Path:
        """Write ``artifact`` atomically; ``LATEST`` moves to it if it is the newest."""
        if not _VERSION.match(artifact.version):
            raise PipelineConfigError(f"bad model version {artifact.version!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / artifact.version
        text = artifact.to_json()
        if final.exists():
            if self.get(artifact.version).to_json() != text:
                raise PipelineConfigError(f"{final}: another artifact has this version")
        else:
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{artifact.version}-", dir=self.directory))
            try:
                _write_synced(tmp / MODEL_FILE, text)
                fsync_dir(tmp)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            fsync_dir(self.directory)
        current = self.latest_version()
        if current is None or artifact.version > current:
            write_atomic(self.directory / LATEST_FILE, f"{artifact.version}\n".encode())
        return final

    def latest_version(self) -> str | None:
        """The version ``LATEST`` names (cheap enough to poll between batches)."""
        pointer = self.directory / LATEST_FILE
        try:
            version = pointer.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PipelineConfigError(f"{pointer}: unreadable ({exc.strerror})") from None
        if not _VERSION.match(version):
            raise PipelineConfigError(f"{pointer}: not a model version: {version[:40]!r}")
        return version

    def latest(self) -> ModelArtifact | None:
        version = self.latest_version()
        return None if version is None else self.get(version)

    def get(self, version: str) -> ModelArtifact:
        if not _VERSION.match(version):
            raise PipelineConfigError(
                f"{version!r} is not a model version (like 20261121T003105Z-1a2b3c4d)"
            )
        path = self.directory / version / MODEL_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PipelineConfigError(f"{self.directory}: no model version {version}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineConfigError(f"{path}: unreadable model artifact ({exc})") from None
        artifact = ModelArtifact.from_json(text, str(path))
        if artifact.version != version:
            raise PipelineConfigError(f"{path}: holds version {artifact.version}, not {version}")
        return artifact


def adopt(
    model: StreamModel, artifact: ModelArtifact, *, network_key: str | None = None
) -> KrigingParams:
    """Apply ``artifact`` to a running model, keeping everything it has learnt.

    Replaces the kriging parameters (a frozen dataclass: ``dataclasses.replace``) and sets
    each forecaster's diurnal profile; smoother sums, calibration, forecaster weights and
    drift state are untouched. A forecaster's new ``diurnal_change`` feature starts at
    weight 0 (see :mod:`airpath.air.forecast`). Returns the parameters now in use.
    """
    if network_key is not None and artifact.network_key != network_key:
        raise PipelineConfigError(
            f"model {artifact.version} is for network {artifact.network_key}, "
            f"the job runs {network_key}"
        )
    params = artifact.params(model.kriging.params)
    model.kriging.params = params
    for pollutant, forecaster in model.kriging.forecasters.items():
        if pollutant in artifact.profile.pollutants:
            forecaster.diurnal = artifact.profile.for_pollutant(pollutant)
    return params


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"time without a zone: {text}")
    return t.astimezone(dt.UTC)
