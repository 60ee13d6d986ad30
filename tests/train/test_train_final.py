"""final.json / final.txt of a run (train/engine.py ``write_final``)."""

from __future__ import annotations

import json

from focalsam_fast.cli.main import main


def test_final_reports_the_best_test_epoch_beside_the_last(tmp_path) -> None:
    """final.json's best_epoch is the argmax of metrics.jsonl's overall test accuracy."""
    out = tmp_path / "run"
    assert main(["train", "--epochs", "4", "--out", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = json.loads((out / "final.json").read_text())["best_epoch"]
    top = max(records, key=lambda r: r["test_overall"])
    assert best["epoch"] == top["epoch"] and best["test_overall"] == top["test_overall"]
    assert f"best test epoch {top['epoch']}:" in (out / "final.txt").read_text()
