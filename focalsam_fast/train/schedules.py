"""Per-epoch schedules (docs/spec.md §6, §8): cosine learning rate, rho (constant / two-step), DRW."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import Optimizer

from ..losses import drw_weights
from ..losses.base import LogitAdjustedLoss
from ..optim import ConstantRho, TwoStepRho
from ..optim.rho_schedule import RhoScheduler
from .config import SWITCH_FRACTION, TrainConfig


class CosineLR:
    r"""``lr_e = lr0 (1 + cos(pi e / E)) / 2`` for the 0-based epoch ``e`` of ``E``, no warmup.

    Writes ``group['lr']`` of every param group when built (epoch 0) and on each :meth:`step`
    (once per epoch, after it).  ``state_dict`` makes a resumed run continue on the same curve.
    """

    def __init__(self, optimizer: Optimizer, epochs: int) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.optimizer, self.epochs = optimizer, epochs
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, epoch: int, base_lr: float) -> float:
        """The learning rate of 0-based ``epoch``."""
        return base_lr * (1.0 + math.cos(math.pi * epoch / self.epochs)) / 2.0

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(self.last_epoch, base)

    def step(self) -> None:
        """Advance one epoch."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate of each param group for the current epoch."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), "epochs": self.epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = list(state["base_lrs"])
        self.epochs = int(state["epochs"])
        self._apply()


def build_rho_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> RhoScheduler | None:
    """Two-step rho when ``cfg.rho_steps`` is set, else constant; ``None`` for plain SGD."""
    if not all("rho" in g for g in optimizer.param_groups):
        return None
    if cfg.rho_steps is not None:
        return TwoStepRho(optimizer, cfg.rho_steps, cfg.epochs, SWITCH_FRACTION)
    return ConstantRho(optimizer)


def drw_switch_epoch(epochs: int) -> int:
    """First 0-based epoch with DRW class weights (160 of 200)."""
    return int(SWITCH_FRACTION * epochs)


def apply_drw(criterion: LogitAdjustedLoss, class_counts: list[int], epoch: int, epochs: int) -> None:
    """Set the DRW class weights of ``epoch`` on ``criterion`` (all ones before the switch)."""
    weights: torch.Tensor = drw_weights(class_counts, epoch, drw_switch_epoch(epochs))
    criterion.set_weight(weights)
