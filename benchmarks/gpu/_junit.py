"""Verdict of a pytest stage from its junit XML: in a GPU stage a skipped test is a failure.

``python -m benchmarks.gpu._junit FILE.xml [--allow-skips] [--allow-empty]`` prints the counts and
every skipped / failed test with its message, and exits 1 when the file is missing or unreadable,
when a test failed or errored, when no test ran (unless ``--allow-empty``), or when a test was
skipped (unless ``--allow-skips``: the benchmark stages, whose skips are only listed).  pytest
writes an expected failure (xfail) as a skip, so it fails a GPU stage too.  This is the one module
under ``benchmarks/gpu/`` that runs without a GPU: it only reads a file.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JunitSummary:
    """Test counts and the ids (``classname::name: message``) of the tests that did not pass."""

    tests: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.tests - len(self.failed) - len(self.skipped)


def summarize(path: Path) -> JunitSummary:
    """Counts from every ``<testcase>`` of a pytest junit XML (errors count as failures)."""
    root = ET.parse(path).getroot()
    out = JunitSummary()
    for case in root.iter("testcase"):
        out.tests += 1
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        for child in case:
            if child.tag in ("failure", "error"):
                out.failed.append(f"{test_id}: {child.tag}: {_first_line(child)}")
                break
            if child.tag == "skipped":
                out.skipped.append(f"{test_id}: {_first_line(child)}")
                break
    return out


def _first_line(element: ET.Element) -> str:
    text = element.get("message") or element.text or ""
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


def verdict(summary: JunitSummary, allow_skips: bool = False, allow_empty: bool = False) -> list[str]:
    """Reasons the stage fails (empty: it passes)."""
    reasons = []
    if summary.failed:
        reasons.append(f"{len(summary.failed)} test(s) failed or errored")
    if summary.skipped and not allow_skips:
        reasons.append(f"{len(summary.skipped)} test(s) skipped (a skipped GPU test is a failure)")
    if summary.tests == 0 and not allow_empty:
        reasons.append("no test ran")
    return reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", type=Path)
    parser.add_argument("--allow-skips", action="store_true", help="list skips without failing")
    parser.add_argument("--allow-empty", action="store_true", help="no collected test is not a failure")
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.xml)
    except (OSError, ET.ParseError) as exc:
        print(f"junit: FAILED: cannot read {args.xml} ({exc}); pytest did not finish")
        return 1
    print(
        f"junit: {summary.tests} tests, {summary.passed} passed, {len(summary.failed)} failed, "
        f"{len(summary.skipped)} skipped ({args.xml.name})"
    )
    for line in summary.failed:
        print(f"  FAILED {line}")
    for line in summary.skipped:
        print(f"  SKIPPED {line}")
    reasons = verdict(summary, args.allow_skips, args.allow_empty)
    if reasons:
        print("junit: FAILED: " + "; ".join(reasons))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
