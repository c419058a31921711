"""``python -m airpath.api serve ...``: the API without the ``airpath`` command (the
benchmark and the crash test start servers this way)."""

from __future__ import annotations

import argparse
import sys

from airpath.api.cli import add_serve_parser
from airpath.errors import AirpathError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airpath.api")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AirpathError as exc:
        print(f"airpath: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
