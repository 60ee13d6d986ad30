"""Output folders and checkpoints through the CLI: one run per folder (lock, held run, unique default
names), a killed run leaves no stale lock, a full disk or a failure mid-run is one line with the
resume command and nothing partial, corrupted and older checkpoints are refused in one line."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from focalsam_fast.data import CorruptImageError
from focalsam_fast.train import checkpoint, engine, files, runfolder
from focalsam_fast.train.checkpoint import load_checkpoint
from focalsam_fast.train.methods import ClosureSGD
from focalsam_fast.train.runfolder import LOCK_NAME, RunFolder

REPO = Path(__file__).resolve().parents[2]
FAST = ("--method", "sgd", "--batch-size", "128", "--no-progress")  # 3 steps per epoch


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _epochs(folder: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_cli_folder_in_use_is_refused(run_cli, error_line, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunFolder.claim(out):
        for extra in ((), ("--resume",), ("--compare", "sgd,sam")):
            line = error_line(run_cli("train", *FAST, "--out", str(out), *extra))
            if extra == ("--resume",):
                assert "last.pt not found" in line  # nothing to resume yet
                continue
            assert line == (
                f"focalsam: error: run folder {out} is in use by another focalsam process "
                f"(pid {os.getpid()}); use a different --out or wait"
            )
        assert _names(out) == {LOCK_NAME}  # the loser wrote nothing


def test_cli_real_process_lock_then_sigkill_then_resume(run_cli, error_line, tmp_path: Path) -> None:
    """A live `focalsam train` owns its folder; once SIGKILLed its lock is gone, --resume works and
    the temporary file of an interrupted save is cleaned up at that start."""
    out = tmp_path / "live"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "from focalsam_fast.cli.main import main; raise SystemExit(main())"
    argv = [sys.executable, "-c", code, "train", *FAST, "--epochs", "2000", "--out", str(out)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (out / "last.pt").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 90 s"
            time.sleep(0.05)
        for extra in ((), ("--resume",)):
            line = error_line(run_cli("train", *FAST, "--out", str(out), *extra))
            assert f"run folder {out} is in use by another focalsam process (pid {proc.pid})" in line
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (out / ".last.pt.x7k2m9.tmp").write_bytes(b"half a checkpoint")  # what a kill mid-save leaves
    done = load_checkpoint(out / "last.pt")
    res = run_cli(
        "train", "--out", str(out), "--resume", "--max-steps", str(done["global_step"] + 1), "--no-progress"
    )
    assert res.code == 0, res.err
    # the planted file, and possibly one of the killed process's own interrupted saves
    assert re.search(r"removed [12] temporary file\(s\) of an interrupted save", res.err), res.err
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
    assert load_checkpoint(out / "last.pt")["global_step"] == done["global_step"] + 1


def test_cli_held_run_points_to_resume(run_cli, error_line, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("train", *FAST, "--epochs", "1", "--out", str(out)).code == 0
    before = (out / "last.pt").read_bytes()
    for argv in (
        ("--out", str(out)),
        ("--out", str(out), "--epochs", "3"),
        ("--resume", str(tmp_path / "run" / "last.pt"), "--out", str(out / ".." / "run")),
    ):
        res = run_cli("train", *FAST, *argv)
        if "--resume" in argv:  # the same checkpoint by another path: allowed
            assert res.code == 0, res.err
            continue
        assert error_line(res) == (
            f"focalsam: error: {out} already holds a run (last.pt); continue it "
            f"with `focalsam train --out {out} --resume` or choose another --out"
        )
    assert (out / "last.pt").read_bytes() == before
    other = tmp_path / "other"
    assert run_cli("train", *FAST, "--epochs", "1", "--out", str(other)).code == 0
    line = error_line(run_cli("train", "--resume", str(other / "last.pt"), "--out", str(out)))
    assert f"{out} already holds a run" in line  # resuming another run's checkpoint into it: refused


def test_cli_default_names_unique_in_one_second(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runfolder.time, "strftime", lambda fmt: "20260101-120000")  # the same second
    for _ in range(2):
        assert run_cli("train", *FAST, "--max-steps", "1").code == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.startswith("digits_lt-sgd-20260101-120000-") for r in runs)
    for r in runs:
        assert load_checkpoint(r / "last.pt")["global_step"] == 1 and _epochs(r) == [1]


def test_cli_failed_default_run_leaves_no_empty_folder(
    run_cli, error_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def unreadable(cfg):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(engine, "build_data", unreadable)
    assert "Input/output error" in error_line(run_cli("train", *FAST))
    assert list((tmp_path / "runs").iterdir()) == []


def _save_fails_at(monkeypatch: pytest.MonkeyPatch, call: int, exc: OSError) -> None:
    """The ``call``-th checkpoint save writes part of its bytes, then fails with ``exc``."""
    original, count = checkpoint.torch.save, {"n": 0}

    def save(obj, fh, *args, **kwargs):
        count["n"] += 1
        if count["n"] == call:
            fh.write(b"\0" * 1000)
            raise exc
        return original(obj, fh, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save)


def test_cli_disk_full_mid_run_then_resume(
    run_cli, error_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "full"
    with monkeypatch.context() as m:
        _save_fails_at(m, 2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        line = error_line(run_cli("train", *FAST, "--epochs", "3", "--out", str(out)), started=True)
    assert line == (
        f"focalsam: error: disk full while writing {out / 'last.pt'} (no partial file was left): "
        "free space on that disk or choose an --out folder on another one; the last complete "
        f"epoch (1/3) is saved in {out / 'last.pt'}; continue with: focalsam train --out {out} "
        "--resume"
    )
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and _epochs(out) == [1]
    res = run_cli("train", "--out", str(out), "--resume", "--no-progress")
    assert res.code == 0, res.err
    assert load_checkpoint(out / "last.pt")["epoch"] == 3 and _epochs(out) == [1, 2, 3]


@pytest.mark.parametrize("errno_", [errno.ENOSPC, errno.EROFS])
def test_cli_write_failure_at_start(
    run_cli, error_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_: int
) -> None:
    """The first write (config.json) fails at fsync: one line, no checkpoint, no temporary file."""

    def fsync(fd):
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(files.os, "fsync", fsync)
    out = tmp_path / "run"
    line = error_line(run_cli("train", *FAST, "--out", str(out)), started=True)
    what = "disk full while writing" if errno_ == errno.ENOSPC else "cannot write"
    assert f"{what} {out / 'config.json'}" in line
    assert line.endswith("no epoch was completed, so no checkpoint was written")
    assert _names(out) == {LOCK_NAME}


def test_cli_eval_disk_full(run_cli, error_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    assert run_cli("train", *FAST, "--max-steps", "1", "--out", str(out)).code == 0
    before = _names(out)

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", fsync)
    line = error_line(run_cli("eval", str(out / "last.pt"), "--no-progress"))
    assert f"disk full while writing {out / 'eval.json'} (no partial file was left)" in line
    assert _names(out) == before


@pytest.mark.parametrize(
    "exc",
    [
        CorruptImageError("train/3/0042.jpg: image file is truncated; re-download"),
        FloatingPointError("loss at w (first forward) is not finite"),
    ],
)
def test_cli_failure_mid_run_says_how_to_resume(
    run_cli, error_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """A data error (an OSError of the data package) or a divergence reported by the optimizer, in
    epoch 2: one line with the cause and the last complete epoch."""
    original, count = ClosureSGD.step, {"n": 0}

    def step(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] == 4:  # first step of epoch 2
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ClosureSGD, "step", step)
    out = tmp_path / "run"
    line = error_line(run_cli("train", *FAST, "--epochs", "3", "--out", str(out)), started=True)
    assert str(exc) in line
    if isinstance(exc, FloatingPointError):
        assert "training diverged at epoch 2, step 4" in line and "lower --lr or --rho" in line
    assert line.endswith(
        f"the last complete epoch (1/3) is saved in {out / 'last.pt'}; "
        f"continue with: focalsam train --out {out} --resume"
    )


def test_cli_corrupted_and_older_checkpoints(run_cli, error_line, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("train", *FAST, "--max-steps", "1", "--out", str(out)).code == 0
    path = out / "last.pt"
    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    path.write_bytes(bytes(flipped))
    for argv in (("eval", str(path)), ("train", "--out", str(out), "--resume")):
        line = error_line(run_cli(*argv))
        assert f"checkpoint {path} is corrupted (its SHA-256 does not match" in line
    path.write_bytes(good[:-100])
    assert "corrupted or truncated" in error_line(run_cli("eval", str(path)))
    torch.save({"format": 1, "config": {}, "model": {}}, path)
    for argv in (("eval", str(path)), ("train", "--out", str(out), "--resume")):
        line = error_line(run_cli(*argv))
        assert "was written by an older focalsam (format 1, without an integrity digest)" in line
