"""Atomic writes: an OSError at any point (temp file creation, write, fsync, rename) becomes one
OutputError, leaves the previous file intact and no temporary file; a full disk says so."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from focalsam_fast.train import files
from focalsam_fast.train.errors import OutputError
from focalsam_fast.train.files import (
    atomic_write,
    atomic_write_text,
    ensure_folder,
    probe_writable,
    remove_temp_files,
)

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_train_files_atomic_write_text(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    atomic_write_text("one", path)
    atomic_write_text("two", path)
    assert path.read_text() == "two"
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


def _fail_in(monkeypatch: pytest.MonkeyPatch, where: str, exc: BaseException) -> None:
    """Make step ``where`` of atomic_write raise ``exc``."""

    def boom(*args, **kwargs):
        raise exc

    if where == "write":
        return  # the writer callback raises (see _writer)
    target = {
        "mkstemp": (files.tempfile, "mkstemp"),
        "fsync": (files.os, "fsync"),
        "replace": (files.os, "replace"),
    }[where]
    monkeypatch.setattr(*target, boom)


def _writer(where: str, exc: BaseException):
    def write(fh) -> None:
        fh.write(b"partial")
        if where == "write":
            raise exc
        fh.write(b" and the rest")

    return write


@pytest.mark.parametrize("where", ["mkstemp", "write", "fsync", "replace"])
@pytest.mark.parametrize(
    "exc",
    [
        ENOSPC,
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.EROFS, "Read-only file system"),
        KeyboardInterrupt(),
    ],
)
def test_train_files_failure_leaves_previous_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, exc: BaseException
) -> None:
    path = tmp_path / "metrics.jsonl"
    atomic_write_text("previous\n", path)
    with monkeypatch.context() as m:
        _fail_in(m, where, exc)
        expected = KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else OutputError
        with pytest.raises(expected) as info:
            atomic_write(path, _writer(where, exc))
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
    if expected is OutputError:
        msg = str(info.value)
        assert str(path) in msg and "\n" not in msg
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            assert msg.startswith(f"disk full while writing {path} (no partial file was left)")
        else:
            assert f"cannot write {path}: {exc.strerror}; choose a writable --out folder" == msg


def test_train_files_folder_checks(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        ensure_folder(tmp_path / "file")
    with pytest.raises(OutputError, match="Not a directory"):
        ensure_folder(tmp_path / "file" / "sub")
    with pytest.raises(OutputError, match="file is a file, not a folder"):
        atomic_write_text("x", tmp_path / "file" / "a.json")
    with pytest.raises(OutputError, match="cannot write /proc/focalsam-"):
        probe_writable(f"/proc/focalsam-{os.getpid()}")
    assert ensure_folder(tmp_path / "a" / "b") is True
    assert ensure_folder(tmp_path / "a" / "b") is False
    probe_writable(tmp_path / "a" / "b")
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe leaves nothing


def test_train_files_probe_reports_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args, **kwargs):
        raise ENOSPC

    monkeypatch.setattr(files.tempfile, "mkstemp", full)
    with pytest.raises(OutputError, match="disk full"):
        probe_writable(tmp_path)


def test_train_files_remove_temp_files(tmp_path: Path) -> None:
    for name in (".last.pt.abc123.tmp", ".metrics.jsonl.x.tmp", "keep.tmp", "last.pt", ".focalsam.lock"):
        (tmp_path / name).write_text("x")
    assert remove_temp_files(tmp_path) == [".last.pt.abc123.tmp", ".metrics.jsonl.x.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".focalsam.lock", "keep.tmp", "last.pt"]
