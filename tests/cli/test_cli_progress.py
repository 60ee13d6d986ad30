"""Progress when stderr is not a terminal (nohup, CI, a pipe): a line per epoch and progress lines
inside epochs; ``--no-progress`` keeps the epoch lines; ``--quiet`` silences stderr; the run header
names the threads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from focalsam_fast.cli.main import DEFAULT_PROGRESS_EVERY_S
from focalsam_fast.train.progress import DEFAULT_EVERY_S

REPO = Path(__file__).resolve().parents[2]
STEP_LINE = re.compile(
    r"^epoch (\d+)/(\d+)  step (\d+)/(\d+) \((\d+) in all\)  loss \d+\.\d{4}  "
    r"[\d.]+ img/s  ETA epoch \S+, run \S+$"
)
EPOCH_LINE = re.compile(
    r"^epoch +(\d+)/(\d+)  step (\d+)  lr .* loss \d+\.\d{4}  test .*  [\d.]+s  "
    r"[\d.]+ img/s  ETA \S+$"
)


def test_cli_progress_lines_through_a_pipe(tmp_path: Path) -> None:
    """A real process whose stderr is a pipe: no bar, one line per epoch, step lines inside."""
    code = "from focalsam_fast.cli.main import main; raise SystemExit(main())"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "train",
            "--epochs",
            "3",
            "--max-steps-per-epoch",
            "4",
            "--progress-every",
            "0",
            "--out",
            str(tmp_path / "run"),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "\r" not in proc.stderr  # no tqdm bar
    assert lines[0].startswith(
        "training focalsam/la on digits_lt with digits_cnn for 3 epochs on cpu (1 CPU thread) -> "
    )
    assert lines[1] == "short run, not the paper's setting: at most 4 steps per epoch (--max-steps-per-epoch)"
    epochs = [m.groups() for m in map(EPOCH_LINE.match, lines) if m]
    assert [(e, n, s) for e, n, s in epochs] == [("1", "3", "4"), ("2", "3", "8"), ("3", "3", "12")]
    steps = [m.groups() for m in map(STEP_LINE.match, lines) if m]
    assert [(int(e), int(s), int(g)) for e, _, s, _, g in steps] == [
        (e, s, 4 * (e - 1) + s) for e in (1, 2, 3) for s in (1, 2, 3)
    ]
    assert "short run, not the paper's setting" in proc.stdout


def test_cli_progress_no_progress_keeps_epoch_lines(run_cli, tmp_path: Path) -> None:
    res = run_cli(
        "train",
        "--epochs",
        "12",
        "--max-steps-per-epoch",
        "2",
        "--progress-every",
        "0",
        "--no-progress",
        "--out",
        str(tmp_path / "a"),
    )
    assert res.code == 0, res.err
    lines = res.err.splitlines()
    assert [int(m.group(1)) for m in map(EPOCH_LINE.match, lines) if m] == list(range(1, 13))  # every epoch
    assert not any(STEP_LINE.match(line) for line in lines)


def test_cli_progress_quiet(run_cli, tmp_path: Path) -> None:
    res = run_cli(
        "train",
        "--epochs",
        "2",
        "--max-steps-per-epoch",
        "2",
        "--progress-every",
        "0",
        "--quiet",
        "--out",
        str(tmp_path / "q"),
    )
    assert res.code == 0, res.err
    assert res.err == ""
    assert "head" in res.out and "outputs in" in res.out  # the results still print
    res = run_cli("eval", str(tmp_path / "q" / "last.pt"), "-q")
    assert res.code == 0 and res.err == "" and "written:" in res.out


def test_cli_progress_every_checked(run_cli, error_line) -> None:
    line = error_line(run_cli("train", "--progress-every", "-1"))
    assert line == "focalsam: error: --progress-every must be a number of seconds >= 0, got -1"
    assert DEFAULT_PROGRESS_EVERY_S == DEFAULT_EVERY_S  # the help's default is the engine's
