"""``airpath serve``: the HTTP API under uvicorn. Thin: options → :class:`ApiSettings`.

With ``--workers N`` uvicorn forks N processes, each loading its own network and
router; they get their settings through the ``AIRPATH_API_SETTINGS`` variable (tokens
are read again from the file and ``AIRPATH_API_TOKENS``, never put in the environment).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from airpath.api.settings import TOKENS_ENV, ApiSettings, load_tokens

SETTINGS_ENV = "AIRPATH_API_SETTINGS"
TOKENS_FILE_ENV = "AIRPATH_API_TOKENS_FILE"


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the ``airpath`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="the HTTP API: routes, the live field, sensors, partner ingest"
    )
    p.add_argument("--network", required=True, help="network directory")
    p.add_argument("--field-store", help="directory or redis://host:port/db (default: priors)")
    p.add_argument("--landing", help="landing directory for POST /v1/readings (default: off)")
    p.add_argument("--dead-letters", help="rejected readings (default: LANDING-rejected)")
    p.add_argument("--sensors", help="the streaming job's sensors.json (WORK/sensors.json)")
    p.add_argument(
        "--tokens", help=f'partner tokens, JSON {{"token": "partner"}} (also ${TOKENS_ENV})'
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--max-field-age",
        type=float,
        default=120.0,
        help="seconds; /readyz fails on an older field (0: never)",
    )
    p.add_argument("--rate", type=float, default=2.0, help="readings requests/s per token")
    p.add_argument("--burst", type=int, default=20, help="readings requests at once per token")
    p.add_argument("--max-body", type=int, default=1_048_576, help="readings body limit, bytes")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)
    return p


def settings_from_args(args: argparse.Namespace) -> ApiSettings:
    return ApiSettings.create(
        args.network,
        field_store=args.field_store,
        landing_dir=args.landing,
        dead_letter_dir=args.dead_letters,
        sensors_file=args.sensors,
        tokens=load_tokens(args.tokens, os.environ),
        max_field_age_s=args.max_field_age,
        readings_rate_per_s=args.rate,
        readings_burst=args.burst,
        max_body_bytes=args.max_body,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from airpath.api.app import create_app

    settings = settings_from_args(args)  # checked here, so a bad option fails at once
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "proxy_headers": False,
    }
    if args.workers <= 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    os.environ[SETTINGS_ENV] = settings.to_json()
    if args.tokens:
        os.environ[TOKENS_FILE_ENV] = os.path.abspath(args.tokens)
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=args.workers, **common)
    return 0


def app_from_env() -> Any:
    """The app of one worker process (uvicorn's ``factory``), from ``cmd_serve``'s
    settings in the environment."""
    from airpath.api.app import create_app

    tokens = load_tokens(os.environ.get(TOKENS_FILE_ENV), os.environ)
    return create_app(ApiSettings.from_json(os.environ[SETTINGS_ENV], tokens))
