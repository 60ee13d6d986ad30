"""Input checks shared by the optimizers and losses: clear messages, raised before any change."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def check_nonneg(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0."""
    if isinstance(value, Tensor):
        value = float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def as_class_counts(class_counts: Sequence[int] | Tensor) -> Tensor:
    """Validate training-set class counts and return them as a 1-D float64 CPU tensor."""
    t = torch.as_tensor(class_counts).detach().cpu()
    if t.dim() != 1:
        raise ValueError(
            f"class_counts must be 1-D (one training count per class), got shape {tuple(t.shape)}"
        )
    if t.numel() == 0:
        raise ValueError("class_counts is empty: give one training count per class")
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"class_counts must be finite, got {t.tolist()}")
    bad = (t <= 0).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"class_counts must all be > 0 (training counts), got {t[bad].tolist()} "
            f"at class index {bad}"
        )
    return t.to(torch.float64)


def check_targets(targets: Tensor, num_classes: int, batch: int | None = None) -> None:
    """Labels must be a 1-D integer tensor (of length ``batch`` when given) in [0, num_classes)."""
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a tensor of class indices, got {type(targets).__name__}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    if targets.dim() != 1:
        raise ValueError(f"targets must be 1-D (one label per sample), got shape {tuple(targets.shape)}")
    if batch is not None and targets.shape[0] != batch:
        raise ValueError(
            f"targets must have shape ({batch},) to match the {batch} per-sample losses, "
            f"got {tuple(targets.shape)}"
        )
    if targets.numel() == 0:
        return
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"label {bad} is out of range: valid labels are 0..{num_classes - 1} "
            f"(class_counts has {num_classes} entries)"
        )


def check_per_sample(losses: Tensor, who: str) -> None:
    """A closure must return per-sample losses of shape [B]."""
    if not isinstance(losses, Tensor):
        raise TypeError(
            f"{who}: the closure must return a tensor of per-sample losses (or a tuple "
            f"(losses, logits)), got {type(losses).__name__}"
        )
    if losses.dim() == 0:
        raise ValueError(
            f"{who}: the closure returned a scalar loss, but per-sample losses are needed to "
            "weight samples by class: build the criterion with reduction='none' "
            "(e.g. nn.CrossEntropyLoss(reduction='none'))"
        )
    if losses.dim() != 1:
        raise ValueError(
            f"{who}: per-sample losses must have shape [B], got {tuple(losses.shape)}"
        )


def check_finite_loss(losses: Tensor, where: str) -> None:
    """Outside AMP a non-finite loss is an error (the weights are left untouched by the caller)."""
    if not bool(torch.isfinite(losses.detach()).all()):
        raise FloatingPointError(
            f"non-finite loss {where}: the step was not applied and the weights are unchanged. "
            "Lower the learning rate or rho, check the data, or use AMP with a GradScaler "
            "(which skips such steps)."
        )
