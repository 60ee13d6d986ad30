"""Progress inside an epoch: the mode for a terminal or not, the lines' content and spacing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from focalsam_fast.train import Trainer, resolve_config
from focalsam_fast.train.progress import EpochProgress, fmt_duration, progress_mode


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_train_progress_mode() -> None:
    assert progress_mode(None, _Tty()) == "bar"
    assert progress_mode(None, io.StringIO()) == "lines"  # nohup, CI, a pipe
    assert progress_mode("auto", io.StringIO()) == "lines"
    assert progress_mode(True) == "bar" and progress_mode(False) == "off"
    assert progress_mode("lines", _Tty()) == "lines"
    with pytest.raises(ValueError, match="unknown progress mode 'loud'"):
        progress_mode("loud")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (7260, "2h01m"), (3 * 86400 + 4 * 3600 + 59, "3d04h")],
)
def test_train_progress_durations(seconds: float, text: str) -> None:
    assert fmt_duration(seconds) == text


def test_train_progress_lines_every_interval() -> None:
    now = [100.0]
    lines: list[str] = []
    bar = EpochProgress(3, 10, 8, "lines", lines.append, every_s=10.0, later_epochs=7, clock=lambda: now[0])
    for step in range(8):
        now[0] += 4.0  # 4 s per step of 32 images
        bar.update(32, 1.5 - 0.1 * step, 100 + step + 1)
    # a line once 10 s have passed since the last one, none at the epoch's end (the epoch line follows)
    assert len(lines) == 2
    assert lines[0] == (
        "epoch 3/10  step 3/8 (103 in all)  loss 1.3000  8.0 img/s  ETA epoch 20s, run 4m04s"
    )  # 5 steps x 4 s; + 7 epochs x 8 steps x 4 s
    assert lines[1].startswith("epoch 3/10  step 6/8 (106 in all)  loss 1.0000")


def test_train_progress_eta_uses_the_measured_epoch() -> None:
    now = [0.0]
    lines: list[str] = []
    bar = EpochProgress(
        2,
        4,
        10,
        "lines",
        lines.append,
        every_s=0.0,
        later_epochs=2,
        epoch_estimate=100.0,
        clock=lambda: now[0],
    )
    now[0] = 5.0
    bar.update(16, 0.5, 11)
    assert lines == ["epoch 2/4  step 1/10 (11 in all)  loss 0.5000  3.2 img/s  ETA epoch 45s, run 4m05s"]


@pytest.mark.parametrize("mode", ["off", "bar"])
def test_train_progress_no_lines_unless_asked(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    bar = EpochProgress(1, 1, 3, mode, lines.append, every_s=0.0)
    for _ in range(3):
        bar.update(4, 1.0, 1)
    bar.close()
    assert lines == []


def test_train_progress_engine_logs_every_epoch(tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = resolve_config(None, {"epochs": 12, "max_steps_per_epoch": 2})
    Trainer(cfg, tmp_path, log=lines.append, progress="lines", progress_every_s=0.0).run()
    epoch_lines = [line for line in lines if "test " in line]
    assert [line.split()[1] for line in epoch_lines] == [f"{e}/12" for e in range(1, 13)]
    assert all("img/s" in line and "ETA" in line for line in epoch_lines)
    step_lines = [line for line in lines if "(" in line and "in all)" in line]
    assert len(step_lines) == 12  # every step but each epoch's last (its epoch line follows)
