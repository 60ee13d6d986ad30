"""Class priors and Focal-SAM's per-class coefficients (docs/spec.md §1)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from .._validation import as_class_counts, check_nonneg


def class_priors(class_counts: Sequence[int] | Tensor) -> Tensor:
    r"""Training-set priors :math:`\pi_k = n_k / \sum_j n_j` (float64)."""
    n = as_class_counts(class_counts)
    return n / n.sum()


def focal_coefficients(class_counts: Sequence[int] | Tensor, gamma: float, lam: float) -> Tensor:
    r"""Per-class coefficients :math:`c_k = \lambda (1 - \pi_k)^\gamma` (float64, lambda folded in)."""
    check_nonneg("gamma", gamma)
    check_nonneg("lam (lambda)", lam)
    return lam * (1.0 - class_priors(class_counts)) ** gamma
