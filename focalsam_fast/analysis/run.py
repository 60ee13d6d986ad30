"""A checkpoint's run rebuilt for analysis: model (eval mode), training data, per-sample loss."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..data import LongTailedData
from ..losses import drw_weights
from ..train.builders import build_criterion, build_data, model_from_checkpoint, resolve_device
from ..train.checkpoint import checkpoint_config, load_checkpoint
from ..train.config import SWITCH_FRACTION
from ..train.engine import set_threads
from .groups import group_samples, select_groups, without_augmentation
from .hvp import LossFn


@dataclass
class LoadedRun:
    """What the analysis needs from a checkpoint."""

    model: nn.Module
    loss_fn: LossFn
    device: torch.device
    method: str
    description: dict[str, Any]
    data: LongTailedData
    train: Dataset

    def select(
        self, groups: Sequence[str] | None, classes: Sequence[Sequence[int]] | None
    ) -> dict[str, list[int]]:
        """See :func:`~focalsam_fast.analysis.groups.select_groups`."""
        return select_groups(self.data.groups, self.data.num_classes, groups, classes)

    def samples(
        self, classes: Sequence[int], samples: int | None, generator: torch.Generator, name: str
    ) -> tuple[Tensor, Tensor]:
        """See :func:`~focalsam_fast.analysis.groups.group_samples`."""
        return group_samples(self.train, classes, samples, generator, name)


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Load and verify the checkpoint, rebuild its data, model and loss on ``device`` (CPU threads as
    in training).  The loss is
    the run's per-sample criterion (the SAM methods perturb the weights of this same loss), with the
    DRW class weights of the checkpoint's last epoch for a ``--drw`` run."""
    ckpt = load_checkpoint(path)
    cfg = dataclasses.replace(checkpoint_config(ckpt, path), device=device, prec="fp32")  # Hessians in fp32
    dev = resolve_device(device)
    set_threads(cfg, dev)
    data = build_data(cfg)
    model = model_from_checkpoint(ckpt, path, cfg, data)
    model.to(dev).eval()
    criterion = build_criterion(cfg, data)
    if cfg.drw:
        switch = int(SWITCH_FRACTION * cfg.epochs)
        criterion.set_weight(drw_weights(data.class_counts, ckpt["epoch"] - 1, switch))
    criterion.to(dev)
    description = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "loss": cfg.loss,
        "drw": cfg.drw,
        "epoch": ckpt["epoch"],
        "epochs": cfg.epochs,
        "class_counts": list(data.class_counts),
        "data": "training set, test-time transform (no augmentation)",
    }
    return LoadedRun(
        model, criterion, dev, cfg.method, description, data, without_augmentation(data.train, data.test)
    )
