"""Settings of the HTTP API: every default in one place, checked once at start-up.

:func:`ApiSettings.create` is the one function that applies defaults and validates; the
app factory takes the result and reads nothing from the environment itself. Partner
tokens for ``POST /v1/readings`` come from :func:`load_tokens` (a JSON file and/or the
``AIRPATH_API_TOKENS`` variable, both ``{"<token>": "<partner name>"}``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airpath.errors import InputError

TOKENS_ENV = "AIRPATH_API_TOKENS"
MIN_TOKEN_CHARS = 16  # shorter secrets can be guessed over the network
STATIC_DIR = Path(__file__).resolve().parent / "static"


class ApiConfigError(InputError):
    """A bad API setting: a path, a limit or a token file."""


@dataclass(frozen=True)
class ApiSettings:
    """What one API process serves and its limits. Build with :meth:`create`.

    ``field_store`` is a directory (:class:`~airpath.serving.LocalFieldStore`) or a
    ``redis://`` URL; None serves the network's annual priors. ``landing_dir`` None
    switches ingest off (``POST /v1/readings`` answers 503). ``max_field_age_s`` 0
    means readiness does not depend on the field's age.
    """

    network_dir: Path
    field_store: str | None = None
    landing_dir: Path | None = None
    dead_letter_dir: Path | None = None
    sensors_file: Path | None = None
    tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_field_age_s: float = 120.0
    field_poll_s: float = 0.5
    readings_rate_per_s: float = 2.0  # sustained requests per second per token
    readings_burst: int = 20  # requests a token may send at once
    max_body_bytes: int = 1_048_576
    max_field_features: int = 5000
    max_snap_m: float = 500.0
    static_dir: Path | None = STATIC_DIR

    @classmethod
    def create(
        cls,
        network_dir: str | os.PathLike[str],
        *,
        field_store: str | os.PathLike[str] | None = None,
        landing_dir: str | os.PathLike[str] | None = None,
        dead_letter_dir: str | os.PathLike[str] | None = None,
        sensors_file: str | os.PathLike[str] | None = None,
        tokens: Mapping[str, str] | None = None,
        **limits: Any,
    ) -> ApiSettings:
        """Apply the defaults and check every value; raises :class:`ApiConfigError`.

        Rejected readings go to ``dead_letter_dir``, by default a sibling of the landing
        directory (``<landing>-rejected``): never inside it, where the streaming job
        would read them as readings.
        """
        unknown = set(limits) - (set(cls.__dataclass_fields__) - _NAMED)
        if unknown:
            raise ApiConfigError(f"unknown API settings: {', '.join(sorted(unknown))}")
        landing = None if landing_dir is None else Path(landing_dir)
        dead = dead_letter_dir
        if dead is None and landing is not None:
            dead = landing.with_name(f"{landing.name}-rejected")
        store = None if field_store is None else os.fspath(field_store)
        settings = cls(
            network_dir=Path(network_dir),
            field_store=store or None,
            landing_dir=landing,
            dead_letter_dir=None if dead is None else Path(dead),
            sensors_file=None if sensors_file is None else Path(sensors_file),
            tokens=dict(tokens or {}),
            **limits,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`ApiConfigError` for a value the API cannot run with."""
        if not (self.network_dir / "manifest.json").is_file():
            raise ApiConfigError(f"{self.network_dir}: not a network directory (no manifest)")
        positive = {
            "field_poll_s": self.field_poll_s,
            "readings_rate_per_s": self.readings_rate_per_s,
            "readings_burst": self.readings_burst,
            "max_body_bytes": self.max_body_bytes,
            "max_field_features": self.max_field_features,
            "max_snap_m": self.max_snap_m,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ApiConfigError(f"{name} must be positive, got {value}")
        if not (math.isfinite(self.max_field_age_s) and self.max_field_age_s >= 0):
            raise ApiConfigError(f"max_field_age_s must be >= 0, got {self.max_field_age_s}")
        if self.landing_dir is not None and self.dead_letter_dir is not None:
            landing, dead = self.landing_dir.resolve(), self.dead_letter_dir.resolve()
            if dead == landing or landing in dead.parents:
                raise ApiConfigError(
                    f"dead letters {dead} must not be inside the landing directory {landing}: "
                    "the streaming job would read them as readings"
                )
        check_tokens(self.tokens)

    def to_json(self) -> str:
        """These settings as JSON, tokens left out (worker processes re-read them)."""
        data = {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        data.pop("tokens")
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, tokens: Mapping[str, str]) -> ApiSettings:
        """The settings :meth:`to_json` wrote, with ``tokens`` (checked again)."""
        data = json.loads(text)
        static = data.pop("static_dir")
        return cls.create(
            data.pop("network_dir"),
            tokens=tokens,
            static_dir=None if static is None else Path(static),
            **data,
        )


# What create() takes by name; everything else of ApiSettings is a limit keyword.
_NAMED = frozenset(
    {"network_dir", "field_store", "landing_dir", "dead_letter_dir", "sensors_file", "tokens"}
)


def check_tokens(tokens: Mapping[str, str]) -> None:
    for token, partner in tokens.items():
        if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS or token != token.strip():
            raise ApiConfigError(
                f"token of partner {partner!r}: tokens are strings of at least "
                f"{MIN_TOKEN_CHARS} characters without surrounding spaces"
            )
        if not isinstance(partner, str) or not partner.strip():
            raise ApiConfigError("every token needs a partner name (a non-empty string)")


def load_tokens(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Partner tokens from a JSON file and the ``AIRPATH_API_TOKENS`` variable (merged;
    the file wins on a clash). Both hold ``{"<token>": "<partner name>"}``."""
    tokens: dict[str, str] = {}
    sources: list[tuple[str, str]] = []
    if environ is not None and environ.get(TOKENS_ENV):
        sources.append((f"${TOKENS_ENV}", environ[TOKENS_ENV]))
    if path is not None:
        try:
            sources.append((os.fspath(path), Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise ApiConfigError(f"cannot read tokens file {path}: {exc}") from exc
    for where, text in sources:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApiConfigError(f"{where}: not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiConfigError(f'{where}: want a JSON object {{"<token>": "<partner>"}}')
        tokens.update(data)
    check_tokens(tokens)
    return tokens
