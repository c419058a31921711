"""Fuzz the API against its own OpenAPI spec (schemathesis, in process) with many more
examples than the test suite uses, and write the outcome into BENCHMARKS.md.

    .venv/bin/python benchmarks/fuzz_api.py --examples 300

Each operation gets ``--examples`` schema-valid and as many schema-breaking requests; the
checks are the suite's: no 5xx (``/readyz``'s documented 503 aside), documented status
codes and content types, bodies matching their documented schemas.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _sections import write_section  # noqa: E402

BEGIN, END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"


class Outcomes:
    """Pass/fail per generated test (one per operation and generation mode)."""

    def __init__(self) -> None:
        self.results: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.results[report.nodeid.split("::")[-1]] = report.outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=300)
    args = parser.parse_args()
    os.environ["AIRPATH_FUZZ_EXAMPLES"] = str(args.examples)
    outcomes = Outcomes()
    t0 = time.monotonic()
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", str(REPO / "tests" / "api" / "test_api_fuzz.py")],
        plugins=[outcomes],
    )
    took = time.monotonic() - t0
    failed = sorted(k for k, v in outcomes.results.items() if v != "passed")
    command = shlex.join([".venv/bin/python", "benchmarks/fuzz_api.py", *sys.argv[1:]])
    lines = [
        BEGIN,
        "## API fuzzing (schemathesis against the app's own OpenAPI spec)",
        "",
        f"Command: `{command}` — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {took:.0f} s.",
        "",
        f"- {len(outcomes.results)} generated tests (8 operations; schema-valid and "
        f"schema-breaking requests), up to {args.examples} examples each.",
        "- Checks: no 5xx, documented status codes and content types, response bodies "
        "matching their documented schemas.",
        f"- **Result: {'no failures' if not failed else 'FAILURES: ' + ', '.join(failed)}**"
        f" ({'PASS' if code == 0 and not failed else 'FAIL'}: no 5xx).",
        "",
        END,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    print(f"wrote {write_section(BEGIN, END, text)}")
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
