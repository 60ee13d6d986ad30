"""Input checks shared by the optimizers and losses: clear messages, raised before any change."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_nonneg(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0."""
    if isinstance(value, Tensor):
        value = float(value)
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_finite(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (of either sign)."""
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def as_class_counts(class_counts: Sequence[int] | Tensor) -> Tensor:
    """Validate training-set class counts and return them as a 1-D float64 CPU tensor."""
    try:
        t = torch.as_tensor(class_counts).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"class_counts must be numbers (one training count per class), got {class_counts!r:.80}"
        ) from exc
    if not (
        t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
    ):
        raise ValueError(f"class_counts must be numbers (one training count per class), got dtype {t.dtype}")
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
            f"class_counts must all be > 0 (training counts), got {t[bad].tolist()} at class index {bad}"
        )
    return t.to(torch.float64)


def check_hyper(options: dict, where: str) -> None:
    """Base-optimizer hyper-parameters in ``options`` that must be finite and >= 0 (``lr`` may be a
    one-element tensor); ``where`` is appended to the argument's name in the message."""
    for name in ("lr", "momentum", "dampening", "weight_decay"):
        if name in options:
            value = options[name]
            if isinstance(value, Tensor) and value.numel() != 1:
                raise ValueError(
                    f"{name}{where} must be a number or a one-element tensor, got shape {tuple(value.shape)}"
                )
            check_nonneg(f"{name}{where}", value)


def check_targets(targets: Tensor, num_classes: int, values: bool = True) -> None:
    """Labels must be a 1-D ``torch.long`` tensor of class indices in [0, num_classes).

    The type and shape checks read no tensor data; ``values`` adds the range check, one host read."""
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a tensor of class indices, got {type(targets).__name__}")
    if targets.dtype != torch.int64:
        hint = (
            " (torch indexes with uint8/bool tensors as masks)"
            if targets.dtype in (torch.uint8, torch.bool)
            else ""
        )
        raise TypeError(
            f"targets must be a torch.long (int64) tensor of class indices, got dtype {targets.dtype}"
            f"{hint}; convert with targets.long()"
        )
    if targets.dim() != 1:
        raise ValueError(f"targets must be 1-D (one label per sample), got shape {tuple(targets.shape)}")
    if not values or targets.numel() == 0:
        return
    lo, hi = torch.stack([targets.min(), targets.max()]).tolist()
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"label {bad} is out of range: valid labels are 0..{num_classes - 1} "
            f"(class_counts has {num_classes} entries)"
        )


def check_batch(targets: Tensor, batch: int, what: str = "per-sample losses") -> None:
    """One label per sample of the forward pass (reads no tensor data)."""
    if targets.shape[0] != batch:
        raise ValueError(
            f"targets must have shape ({batch},) to match the {batch} {what}, got {tuple(targets.shape)}"
        )


def check_classes(logits: Tensor, num_classes: int, who: str) -> None:
    """The logits' class dimension must match the optimizer's class table."""
    if logits.dim() < 2 or logits.shape[-1] != num_classes:
        raise ValueError(
            f"{who}: the logits have {logits.shape[-1] if logits.dim() else 0} classes (shape "
            f"{tuple(logits.shape)}) but class_counts has {num_classes}: build the optimizer with "
            "the training counts of the model's classes"
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
        raise ValueError(f"{who}: per-sample losses must have shape [B], got {tuple(losses.shape)}")
