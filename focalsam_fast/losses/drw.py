"""Deferred re-weighting (Cao et al., 2019): class-balanced weights after a switch epoch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._validation import as_class_counts


def class_balanced_weights(class_counts: Sequence[int] | Tensor, beta: float) -> Tensor:
    r""":math:`w_c = (1-\beta)/(1-\beta^{n_c})` rescaled to sum to C (all ones for beta = 0)."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    n = as_class_counts(class_counts)
    w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    return (w / w.sum() * n.numel()).float()


def drw_weights(
    class_counts: Sequence[int] | Tensor, epoch: int, switch_epoch: int = 160, beta: float = 0.9999
) -> Tensor:
    """DRW schedule: beta 0 (all ones) for 0-based ``epoch < switch_epoch``, else ``beta``."""
    return class_balanced_weights(class_counts, 0.0 if epoch < switch_epoch else beta)
