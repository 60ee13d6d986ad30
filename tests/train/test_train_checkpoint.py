"""Checkpoint container: round trip, SHA-256 verified on load (every flipped byte and every
truncation refused), one-line explanations for older-format and config-less files, atomic writes."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest
import torch

from focalsam_fast.train import checkpoint
from focalsam_fast.train.checkpoint import REQUIRED_KEYS, load_checkpoint, save_checkpoint
from focalsam_fast.train.config import TrainConfig
from focalsam_fast.train.errors import CheckpointError, OutputError


def _state(epoch: int = 1) -> dict[str, object]:
    """A complete (small) checkpoint state with fresh random tensors."""
    state: dict[str, object] = {k: None for k in REQUIRED_KEYS}
    state.update(
        epoch=epoch,
        global_step=10 * epoch,
        config=TrainConfig().to_dict(),
        model_name="digits_cnn",
        num_classes=3,
        class_counts=[5, 2, 1],
        class_names=["a", "b", "c"],
        model={"w": torch.randn(7, 5), "b": torch.randn(7, dtype=torch.float64)},
        optimizer={"state": {0: {"momentum_buffer": torch.randn(7, 5)}}},
        history=[{"epoch": epoch}],
        rng=checkpoint.rng_state(),
    )
    return state


def test_train_checkpoint_roundtrip(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "last.pt"
    save_checkpoint(state, path)
    assert path.read_bytes().startswith(b"FOCALSAM-CHECKPOINT 2\nsha256 ")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["model"]["b"].dtype == torch.float64
    assert torch.equal(loaded["model"]["b"], state["model"]["b"])
    assert loaded["config"] == state["config"] and loaded["history"] == state["history"]


def test_train_checkpoint_every_flipped_byte_is_refused(tmp_path: Path) -> None:
    """Flip one random bit of each byte of a whole checkpoint file in turn: every variant is
    refused, none is loaded."""
    path = tmp_path / "last.pt"
    state = _state()
    state["rng"] = {"torch": torch.randint(0, 255, (16,), dtype=torch.uint8)}  # a small file: ~4 KB
    save_checkpoint(state, path)
    good = path.read_bytes()
    header = good.index(b"\n", good.index(b"\n") + 1) + 1
    rng = random.Random()
    refused = 0
    with path.open("r+b") as fh:
        for pos in range(len(good)):
            os.pwrite(fh.fileno(), bytes([good[pos] ^ (1 << rng.randrange(8))]), pos)
            with pytest.raises(CheckpointError) as info:
                load_checkpoint(path)
            os.pwrite(fh.fileno(), good[pos : pos + 1], pos)
            msg = str(info.value)
            assert "\n" not in msg
            if pos >= header:  # payload: the digest catches it
                assert "is corrupted (its SHA-256 does not match" in msg, (pos, msg)
            else:  # header: damaged magic, version, digest or size
                assert "corrupted" in msg or "damaged" in msg or "format" in msg, (pos, msg)
            refused += 1
    assert refused == len(good) > 1000 and header > 80
    assert torch.equal(load_checkpoint(path)["model"]["w"], state["model"]["w"])  # restored: loads again


def test_train_checkpoint_truncated_or_extended_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_state(), path)
    good = path.read_bytes()
    cuts = {len(good) - 1, len(good) // 2, 120, *random.sample(range(100, len(good)), 20)}
    for cut in cuts:
        path.write_bytes(good[:cut])
        with pytest.raises(CheckpointError, match="corrupted or truncated"):
            load_checkpoint(path)
    path.write_bytes(good + b"x")
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(path)


def test_train_checkpoint_older_format_explained(tmp_path: Path) -> None:
    """A format-1 file (plain torch.save of the state dict) gets a one-line explanation."""
    path = tmp_path / "old.pt"
    torch.save({"format": 1, **_state()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "older focalsam (format 1, without an integrity digest)" in str(info.value)
    assert "reads format 2" in str(info.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hello", "is not a focalsam checkpoint"),
        (b"", "is not a focalsam checkpoint"),
        (b"FOCALSAM-CHECKPOINT 7\nsha256 ...\n", "has format '7'"),
        (b"FOCALSAM-CHECKPOINT 2\nsha256 x size 1\n", "damaged digest header"),
    ],
)
def test_train_checkpoint_foreign_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_train_checkpoint_without_config_or_from_other_version(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    state = _state()
    del state["config"]
    save_checkpoint(state, path)
    with pytest.raises(CheckpointError, match="holds no training config"):
        load_checkpoint(path)
    save_checkpoint({"weights": torch.randn(3)}, path)
    with pytest.raises(CheckpointError, match="holds no training config"):
        load_checkpoint(path)
    state = _state()
    del state["rng"], state["history"]
    save_checkpoint(state, path)
    with pytest.raises(CheckpointError, match="lacks rng, history: it was written by another focalsam"):
        load_checkpoint(path)
    state = _state()
    state["config"] = {**state["config"], "warmup_epochs": 5}
    save_checkpoint(state, path)
    with pytest.raises(CheckpointError, match=r"config this focalsam version cannot use.*warmup_epochs"):
        load_checkpoint(path)
    state["config"] = {**_state()["config"], "lr": float("nan")}
    save_checkpoint(state, path)
    with pytest.raises(CheckpointError, match="--lr must be"):
        load_checkpoint(path)


def _broken_save(exc: BaseException):
    def save(obj, fh, *args, **kwargs):
        fh.write(b"partial bytes of a checkpoint")
        raise exc

    return save


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_train_checkpoint_failed_write_keeps_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_state(1), path)
    before = path.read_bytes()
    monkeypatch.setattr(checkpoint.torch, "save", _broken_save(exc))
    with pytest.raises(OutputError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        save_checkpoint(_state(2), path)
    if isinstance(exc, OSError):
        assert "disk full while writing" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_train_rng_roundtrip() -> None:
    state = checkpoint.rng_state()
    a = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    checkpoint.set_rng_state(state)
    b = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_train_checkpoint_every_header_bit_flip_is_refused(tmp_path: Path) -> None:
    """Each of the 8 bit flips of every header byte (a leading size digit turned into a space
    used to parse as the same size and load)."""
    path = tmp_path / "last.pt"
    state = _state()
    save_checkpoint(state, path)
    good = path.read_bytes()
    header = good.index(b"\n", good.index(b"\n") + 1) + 1
    with path.open("r+b") as fh:
        for pos in range(header):
            for bit in range(8):
                os.pwrite(fh.fileno(), bytes([good[pos] ^ (1 << bit)]), pos)
                with pytest.raises(CheckpointError):
                    load_checkpoint(path)
            os.pwrite(fh.fileno(), good[pos : pos + 1], pos)
    assert torch.equal(load_checkpoint(path)["model"]["w"], state["model"]["w"])  # restored: loads again
