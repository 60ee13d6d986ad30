"""Atomic checkpoint writes: a failed or interrupted write leaves the previous file intact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from focalsam_fast.train import checkpoint
from focalsam_fast.train.checkpoint import atomic_save, atomic_write_text


def _broken_save(exc: BaseException):
    def save(obj, fh, *args, **kwargs):
        fh.write(b"partial bytes of a checkpoint")
        raise exc
    return save


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_train_failed_write_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           exc: BaseException) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1, "w": torch.arange(4.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint.torch, "save", _broken_save(exc))
    with pytest.raises(type(exc)):
        atomic_save({"epoch": 2}, path)
    assert path.read_bytes() == before
    assert torch.load(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_train_failed_replace_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    def replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_train_atomic_write_text(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    atomic_write_text("one", path)
    atomic_write_text("two", path)
    assert path.read_text() == "two"


def test_train_rng_roundtrip() -> None:
    state = checkpoint.rng_state()
    a = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    checkpoint.set_rng_state(state)
    b = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
