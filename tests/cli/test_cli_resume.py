"""Ctrl-C and resume: the last complete checkpoint stays intact, and a resumed run ends
bit-identical (weights, BN buffers, optimizer state with momentum, history) to an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from focalsam_fast.optim import FocalSAM
from focalsam_fast.testing import default_sigint
from focalsam_fast.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
ARGS = ("--epochs", "3", "--no-progress")  # digits default: 10 steps per epoch


def _assert_same_state(a: object, b: object, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the ``call``-th FocalSAM step raise KeyboardInterrupt (as Ctrl-C would)."""
    original = FocalSAM.step
    count = {"n": 0}

    def step(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FocalSAM, "step", step)


def test_cli_interrupt_then_resume_is_bitwise_identical(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full, cut = tmp_path / "full", tmp_path / "Cut"  # upper case: the hint keeps paths as given
    assert run_cli("train", *ARGS, "--out", str(full)).code == 0

    with monkeypatch.context() as m:
        _interrupt_at(m, 15)  # in the middle of epoch 2
        res = run_cli("train", *ARGS, "--out", str(cut))
    assert res.code == 130
    assert f"focalsam train --out {cut} --resume" in res.err
    assert "Traceback" not in res.err
    kept = load_checkpoint(cut / "last.pt")
    assert kept["epoch"] == 1 and kept["global_step"] == 10  # the last complete epoch, intact
    assert not [p for p in cut.iterdir() if p.suffix == ".tmp"]

    res = run_cli("train", "--out", str(cut), "--resume", "--no-progress")  # settings from the checkpoint
    assert res.code == 0, res.err
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(cut / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    _assert_same_state(a["model"], b["model"], "model")
    _assert_same_state(a["optimizer"], b["optimizer"], "optimizer")
    assert a["optimizer"]["base_optimizer"]["state"]  # momentum buffers are part of it
    _assert_same_state(a["rng"]["torch"], b["rng"]["torch"], "rng")
    timings = ("seconds", "train_seconds")
    strip = [{k: v for k, v in h.items() if k not in timings} for h in a["history"]]
    assert strip == [{k: v for k, v in h.items() if k not in timings} for h in b["history"]]
    lines = (cut / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_cli_resume_of_finished_run_only_evaluates(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "done"
    assert run_cli("train", "--epochs", "1", "--out", str(out), "--no-progress").code == 0
    before = load_checkpoint(out / "last.pt")
    res = run_cli("train", "--out", str(out), "--resume", "--no-progress")
    assert res.code == 0, res.err
    _assert_same_state(before["model"], load_checkpoint(out / "last.pt")["model"])


def test_cli_real_ctrl_c_keeps_checkpoint(tmp_path: Path) -> None:
    """SIGINT to a real `focalsam train` process: exit 130, resume hint, loadable checkpoint."""
    out = tmp_path / "sig"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "from focalsam_fast.cli.main import main; raise SystemExit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "train", "--epochs", "500", "--out", str(out), "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "last.pt").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 60 s"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    ckpt = load_checkpoint(out / "last.pt")
    assert 1 <= ckpt["epoch"] < 500
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
