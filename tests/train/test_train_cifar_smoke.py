"""Real-data smoke run: ResNet-32 on CIFAR-10-LT IR100 (JPEG archive) with Focal-SAM, ~50 steps.

Skipped when ``<repo>/../shared/data/cifar10-jpeg.tar.xz`` is absent.  Batch 32 and one CPU thread
keep it near a minute on a busy 2-core machine (decoding the archive takes ~15-20 s of it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from focalsam_fast.train import Trainer, resolve_config
from focalsam_fast.train.engine import make_loader

ARCHIVE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.xz"
STEPS = 50


@pytest.mark.slow
@pytest.mark.skipif(
    not ARCHIVE.is_file(),
    reason=f"CIFAR-10 JPEG archive not found at {ARCHIVE}: it is expected in the shared data "
    "folder next to the repository (../shared/data/cifar10-jpeg.tar.xz)",
)
def test_train_cifar10_lt_resnet32_focalsam_loss_falls(tmp_path: Path) -> None:
    cfg = resolve_config("cifar10_resnet32", {"data_root": str(ARCHIVE), "threads": 1, "batch_size": 32})
    trainer = Trainer(cfg, tmp_path, progress=False)
    assert trainer.data.class_counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert trainer.data.groups == {"head": [0, 1, 2, 3], "medium": [4, 5, 6], "tail": [7, 8, 9]}
    loader = make_loader(trainer.data.train, cfg, True, torch.Generator().manual_seed(0), trainer.device)
    trainer.model.train()
    losses = []
    for step, (x, y) in enumerate(loader):
        if step == STEPS:
            break
        out = trainer.optimizer.step(trainer.closure(x, y), targets=y)
        losses.append(float(out.loss))
    assert all(np.isfinite(losses))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(
        f"Focal-SAM ResNet-32 CIFAR-10-LT: mean LA loss steps 1-10 {first:.3f}, "
        f"steps {STEPS - 9}-{STEPS} {last:.3f}"
    )
    assert last < first - 0.1
