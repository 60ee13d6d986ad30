"""``--group-thresholds`` and ``--prec`` on the command line: the run says which head/medium/tail
thresholds it used and whether they are official, config.json records them; bad values are one
line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focalsam_fast.data import imbalance_counts


def _run(run_cli, out: Path, *flags: str):
    return run_cli("train", "--epochs", "1", "--max-steps", "1", "--out", str(out), "--no-progress", *flags)


def test_cli_default_groups_printed_and_recorded(run_cli, tmp_path: Path) -> None:
    res = _run(run_cli, tmp_path / "run")
    assert res.code == 0, res.err
    line = (
        "head/medium/tail groups: head n > 50, medium 10..50, tail n < 10 (assumed: this project's "
        "choice for the digits demo)"
    )
    assert line in res.err.splitlines()
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]
    assert resolved["group_thresholds"] == {
        "tail_below": 10,
        "head_above": 50,
        "official": False,
        "source": "this project's choice for the digits demo",
    }
    assert resolved["precision"] == {
        "prec": "fp32",
        "weights": "float32",
        "autocast": "none",
        "grad_scaler": False,
        "loss_logits": "float32",
    }


def test_cli_group_thresholds_flag(run_cli, tmp_path: Path) -> None:
    res = _run(run_cli, tmp_path / "run", "--group-thresholds", "30", "80")
    assert res.code == 0, res.err
    assert (
        "head/medium/tail groups: head n > 80, medium 30..80, tail n < 30 (assumed: --group-thresholds)"
        in res.err.splitlines()
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["group_thresholds"] == [30, 80]
    counts = config["resolved"]["class_counts"]
    assert counts == imbalance_counts(max(counts), 10, 100)  # the digits profile, unchanged by the flag
    groups = config["resolved"]["groups"]
    assert groups["tail"] == [k for k, n in enumerate(counts) if n < 30]
    assert groups["head"] == [k for k, n in enumerate(counts) if n > 80]
    assert groups["medium"] == [k for k, n in enumerate(counts) if 30 <= n <= 80]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--group-thresholds", "100", "20"],
            "--group-thresholds takes 2 integers TAIL HEAD, each >= 0 with TAIL <= HEAD + 1 "
            "(tail: n < TAIL, head: n > HEAD, medium: the rest), got [100, 20]",
        ),
        (
            ["--prec", "fp16"],
            "--prec fp16 is the CLIP runs' precision (the released CLIP scripts' --prec); "
            "--model digits_cnn trains in fp32 (use --amp bf16 or fp16 for mixed precision)",
        ),
        (["--prec", "bf16"], "unknown --prec 'bf16'; valid: fp32, fp16, amp"),
    ],
)
def test_cli_bad_groups_and_precision(run_cli, error_line, tmp_path: Path, flags: list, message: str) -> None:
    assert error_line(_run(run_cli, tmp_path / "run", *flags)) == f"focalsam: error: {message}"
    assert not (tmp_path / "run").exists()
