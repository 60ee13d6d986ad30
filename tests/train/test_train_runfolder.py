"""Run-folder ownership: one OS lock per folder (released by the kernel when the holder dies), a
held checkpoint needs --resume, unique default names, temp-file cleanup, no empty folder left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from focalsam_fast.train import runfolder
from focalsam_fast.train.errors import OutputError, RunFolderError
from focalsam_fast.train.runfolder import LOCK_NAME, RunFolder

# A stand-in for another focalsam process: locks the folder the same way, then waits.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0); os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_train_runfolder_second_claim_is_refused(tmp_path: Path) -> None:
    first = RunFolder.claim(tmp_path / "run")
    assert first.created and (tmp_path / "run" / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    with pytest.raises(RunFolderError) as info:
        RunFolder.claim(tmp_path / "run")
    assert str(info.value) == (
        f"run folder {tmp_path / 'run'} is in use by another focalsam process "
        f"(pid {os.getpid()}); use a different --out or wait"
    )
    first.release()
    with RunFolder.claim(tmp_path / "run") as again:
        assert again.held and not again.created
    assert not again.held


def test_train_runfolder_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder / LOCK_NAME)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=f"in use by another focalsam process \\(pid {proc.pid}\\)"):
            RunFolder.claim(folder)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (folder / LOCK_NAME).read_text() == f"{proc.pid}\n"  # the dead holder's file is still there ...
    with RunFolder.claim(folder):  # ... but its lock died with it
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()}\n"


def test_train_runfolder_held_checkpoint_needs_resume(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "last.pt").write_bytes(b"checkpoint")
    other = tmp_path / "other.pt"
    other.write_bytes(b"checkpoint")
    for resume_from in (None, other):
        with pytest.raises(RunFolderError) as info:
            RunFolder.claim(folder, resume_from=resume_from)
        assert str(info.value) == (
            f"{folder} already holds a run (last.pt); continue it with "
            f"`focalsam train --out {folder} --resume` or choose another --out"
        )
    with RunFolder.claim(folder, resume_from=folder / "last.pt"):  # resuming from that very file
        pass
    with RunFolder.claim(folder, resume_from=Path(os.path.relpath(folder / "last.pt"))):  # same file
        pass
    assert (folder / "last.pt").read_bytes() == b"checkpoint"


def test_train_runfolder_unique_default_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claims = [RunFolder.claim_new("digits_lt-focalsam", tmp_path) for _ in range(40)]  # same second mostly
    assert len({c.path for c in claims}) == 40
    assert all(c.path.name.startswith("digits_lt-focalsam-") and c.created for c in claims)
    for c in claims:
        c.release()
    # force the same time stamp and suffix: the exclusive mkdir sees the clash and draws again
    tokens = iter(["aaaaaa", "aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(runfolder.time, "strftime", lambda fmt: "20260101-000000")
    monkeypatch.setattr(runfolder.secrets, "token_hex", lambda n: next(tokens))
    a = RunFolder.claim_new("x", tmp_path)
    b = RunFolder.claim_new("x", tmp_path)
    assert (a.path.name, b.path.name) == ("x-20260101-000000-aaaaaa", "x-20260101-000000-bbbbbb")


def test_train_runfolder_discard_removes_only_unused_created_folders(tmp_path: Path) -> None:
    created = RunFolder.claim(tmp_path / "new" / "run")
    created.discard()
    assert not (tmp_path / "new" / "run").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    RunFolder.claim(existing).discard()
    assert existing.is_dir()
    with pytest.raises(ValueError, match="boom"), RunFolder.claim(tmp_path / "used") as used:
        (used.path / "config.json").write_text("{}")
        raise ValueError("boom")
    assert (tmp_path / "used" / "config.json").exists()
    with pytest.raises(ValueError, match="boom"), RunFolder.claim(tmp_path / "unused"):
        raise ValueError("boom")
    assert not (tmp_path / "unused").exists()


def test_train_runfolder_removes_temp_files_of_interrupted_saves(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".last.pt.k2j3h4.tmp").write_bytes(b"half a checkpoint")
    (folder / "last.pt").write_bytes(b"checkpoint")
    with RunFolder.claim(folder, resume_from=folder / "last.pt") as claim:
        assert claim.removed_temp == [".last.pt.k2j3h4.tmp"]
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME, "last.pt"]


def test_train_runfolder_unwritable_or_wrong_out(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        RunFolder.claim(tmp_path / "file")
    with pytest.raises(OutputError, match="file/run: Not a directory; choose a writable --out folder"):
        RunFolder.claim(tmp_path / "file" / "run")
    with pytest.raises(OutputError, match="cannot write /proc/focalsam-run"):
        RunFolder.claim("/proc/focalsam-run")
    with pytest.raises(OutputError, match="cannot write /proc/"):
        RunFolder.claim_new("x", "/proc")
