"""Sections of BENCHMARKS.md that benchmark programs other than the routing one own.

Each program writes its text between its own ``<!-- name:begin -->`` and
``<!-- name:end -->`` markers, after the routing report's marker, so that regenerating
one section keeps every other.
"""

from __future__ import annotations

from pathlib import Path

from _report import OTHER_BEGIN

REPORT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def write_section(begin: str, end: str, section: str, path: Path = REPORT) -> Path:
    """Replace the text between ``begin`` and ``end`` (markers included) by ``section``,
    or append it when the markers are absent."""
    text = path.read_text() if path.exists() else ""
    if OTHER_BEGIN not in text:
        text = text.rstrip("\n") + "\n\n" + OTHER_BEGIN + "\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    return path
