"""docs/spec.md: numbered sections with fixed anchors, and no stale section reference anywhere.

A reference is ``docs/spec.md §N`` or, until the old spelling is replaced everywhere, the same with
``SPEC`` / ``SPEC.md`` in front; ranges (``§2-5``) and lists (``§6, §8``) count every section they
name.  Inside docs/spec.md every ``§N`` is a reference to its own sections.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec.md"

# The old spelling, written so that replacing it across the project leaves these tests intact.
OLD = "SPEC"
NUMBER = r"\d+(?:\.\d+)*"
ITEM = rf"§\s*{NUMBER}(?:\s*[-–]\s*{NUMBER})?"
PREFIX = r"(?:\bSPEC(?:\.md)?|\bdocs/spec\.md)"
CHAIN = re.compile(rf"{PREFIX}\s+{ITEM}(?:\s*(?:,|and|or)\s*{ITEM})*")
ITEM_RE = re.compile(rf"§\s*({NUMBER})(?:\s*[-–]\s*({NUMBER}))?")
HEADING = re.compile(rf"^#{{2,4}}\s+({NUMBER})\.?\s+\S", re.M)
ANCHOR = re.compile(r'^<a id="(s[\d-]+)"></a>\s*$', re.M)
LINK = re.compile(r"\]\(#([^)\s]+)\)")


def spec_text() -> str:
    return SPEC.read_text(encoding="utf-8")


def sections(text: str) -> list[str]:
    """Section numbers of the numbered headings, in order."""
    return HEADING.findall(text)


def anchor_of(number: str) -> str:
    """The explicit anchor of section ``number``: ``s2``, ``s8-1``."""
    return "s" + number.replace(".", "-")


def named_sections(chain: str) -> list[str]:
    """Every section a reference names; a range of whole sections names each one in between."""
    out = []
    for first, last in ITEM_RE.findall(chain):
        out.append(first)
        if last:
            if "." not in first and "." not in last:
                out.extend(str(n) for n in range(int(first) + 1, int(last) + 1))
            else:
                out.append(last)
    return out


def references(text: str, inside_spec: bool = False) -> list[tuple[int, str]]:
    """``(line, section)`` for every section named in ``text``."""
    pattern = ITEM_RE if inside_spec else CHAIN
    found = []
    for m in pattern.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        found.extend((line, n) for n in named_sections(m.group(0)))
    return found


def stale(text: str, known: set[str], inside_spec: bool = False) -> list[str]:
    """``'line N: §X'`` for each reference to a section that ``known`` lacks."""
    return [f"line {line}: §{n}" for line, n in references(text, inside_spec) if n not in known]


def scanned_files() -> list[Path]:
    """Every file that may cite the spec: the package, tests, benchmarks, README.md and docs."""
    files = [ROOT / "README.md"]
    for folder in ("focalsam_fast", "tests", "benchmarks"):
        files += sorted((ROOT / folder).rglob("*.py"))
    files += sorted((ROOT / "docs").rglob("*.md"))
    me = Path(__file__).resolve()
    return [f for f in files if f.resolve() != me and ".venv" not in f.parts]


def test_numbered_headings_are_unique_and_each_has_its_anchor() -> None:
    text = spec_text()
    numbers = sections(text)
    assert len(numbers) >= 10, numbers
    assert len(numbers) == len(set(numbers)), f"duplicate section numbers: {numbers}"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        heading = HEADING.match(line)
        if heading:
            wanted = f'<a id="{anchor_of(heading.group(1))}"></a>'
            assert i > 0 and lines[i - 1] == wanted, f"put the line {wanted} right above: {line}"
    assert sorted(ANCHOR.findall(text)) == sorted(anchor_of(n) for n in numbers)


def test_sections_keep_the_old_spec_numbering() -> None:
    """The old internal SPEC.md had sections 1-10 and 8.1; each keeps its number here."""
    numbers = set(sections(spec_text()))
    assert {str(n) for n in range(1, 11)} | {"8.1"} <= numbers


def test_internal_links_and_section_signs_resolve() -> None:
    text = spec_text()
    numbers = set(sections(text))
    anchors = set(ANCHOR.findall(text))
    bad_links = sorted(set(LINK.findall(text)) - anchors)
    assert not bad_links, f"docs/spec.md links to missing anchors: {bad_links}"
    assert not stale(text, numbers, inside_spec=True)


def test_every_reference_in_the_project_names_an_existing_section() -> None:
    numbers = set(sections(spec_text()))
    problems, count = [], 0
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        count += len(references(text))
        problems += [f"{path.relative_to(ROOT)} {p}" for p in stale(text, numbers)]
    assert count >= 20, f"only {count} spec references found: is the reference pattern still right?"
    assert not problems, "references to sections docs/spec.md does not have:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"({OLD} §8)", ["8"]),
        ("see docs/spec.md §8.1 for transforms", ["8.1"]),
        (f"{OLD}.md §2-5", ["2", "3", "4", "5"]),
        (f"Per-data-set choices ({OLD} §4-5, §8): x", ["4", "5", "8"]),
        ("docs/spec.md §6 and §9", ["6", "9"]),
        ("the paper's §3 and a lone §7", []),
    ],
)
def test_reference_parser(text: str, expected: list[str]) -> None:
    assert [n for _, n in references(text)] == expected


def test_a_stale_reference_is_reported() -> None:
    numbers = set(sections(spec_text()))
    text = f"ok ({OLD} §2)\nold ({OLD} §2-4, §99)\nnew docs/spec.md §8.7\n"
    assert stale(text, numbers) == ["line 2: §99", "line 3: §8.7"]
