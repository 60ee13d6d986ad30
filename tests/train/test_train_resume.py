"""Resume == uninterrupted, bitwise on the CPU, for every method (engine level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from focalsam_fast.train import Trainer, resolve_config
from focalsam_fast.train.checkpoint import load_checkpoint


def _flatten(obj: object, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def _same(a: object, b: object) -> None:
    fa, fb = _flatten(a), _flatten(b)
    assert fa.keys() == fb.keys()
    for k, va in fa.items():
        vb = fb[k]
        if isinstance(va, torch.Tensor):
            assert torch.equal(va, vb), k
        else:
            assert va == vb, k


@pytest.mark.parametrize("method", ["sgd", "sam", "imbsam", "ccsam"])  # focalsam: tests/cli
def test_train_resume_bitwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    cfg = resolve_config(None, {"method": method, "epochs": 3, "batch_size": 128, "loss": "vs", "drw": True})
    Trainer(cfg, tmp_path / "a", log=lambda s: None, progress=False).run()

    first = Trainer(cfg, tmp_path / "b", log=lambda s: None, progress=False)
    original = Trainer.train_epoch

    def interrupted(self: Trainer, epoch: int, *args: object) -> dict[str, float]:
        if epoch == 2:  # after the DRW switch epoch (int(0.8 * 3) = 2) is due
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2
    Trainer(cfg, tmp_path / "b", resume=tmp_path / "b" / "last.pt", log=lambda s: None, progress=False).run()

    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ("model", "optimizer", "lr_scheduler", "rho_scheduler", "epoch", "global_step"):
        _same(a[key], b[key])
    assert [{k: v for k, v in h.items() if k not in ("seconds", "train_seconds")} for h in a["history"]] == [
        {k: v for k, v in h.items() if k not in ("seconds", "train_seconds")} for h in b["history"]
    ]


def test_train_resume_keeps_the_training_time(tmp_path: Path) -> None:
    """Resuming a finished run only evaluates: its recorded training time stays the epochs' sum."""
    cfg = resolve_config(None, {"epochs": 2, "max_steps_per_epoch": 3})
    first = Trainer(cfg, tmp_path, log=lambda s: None, progress=False).run()
    assert first.seconds == sum(h["seconds"] for h in first.history) > 0
    again = Trainer(cfg, tmp_path, resume=tmp_path / "last.pt", log=lambda s: None, progress=False).run()
    assert again.seconds == first.seconds
    assert json.loads((tmp_path / "final.json").read_text())["train_seconds"] == first.seconds
