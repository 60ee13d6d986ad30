"""docs/fidelity.md lists every assumption of the table and the official group thresholds as the
code has them."""

from __future__ import annotations

from pathlib import Path

from focalsam_fast.data.groups import RATIO_THRESHOLDS
from focalsam_fast.train.assumptions import ASSUMPTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"
LABELS = {"cifar10_lt": "CIFAR-10-LT", "cifar100_lt": "CIFAR-100-LT"}


def test_docs_fidelity_lists_every_assumption() -> None:
    text = DOC.read_text()
    for a in ASSUMPTIONS:
        assert f"| `{a.key}` | {', '.join(a.fields)} |" in text, a.key


def test_docs_fidelity_threshold_table_matches_the_code() -> None:
    text = DOC.read_text()
    for (dataset, ratio), th in RATIO_THRESHOLDS.items():
        row = f"| {LABELS[dataset]} | {ratio:g} | {th.tail_below} | {th.head_above} |"
        assert row in text, (dataset, ratio)
