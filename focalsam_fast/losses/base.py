"""Common base of the long-tail losses: per-class logit tables for the fused loss kernel."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._validation import as_class_counts

REDUCTIONS = ("none", "mean", "sum")


class LogitAdjustedLoss(nn.Module):
    r"""Cross-entropy on adjusted logits :math:`z'_j = a_j z_j + b_j - m_j [j = y]`, weighted by
    :math:`w_y`.  Subclasses fill the tables; :meth:`tables` hands them to
    :func:`focalsam_fast.kernels.reference.focal_loss` and its fused versions.

    Args:
        class_counts: training count per class (validated: 1-D, all > 0).
        weight: optional per-class weights (e.g. DRW), length C.
        reduction: 'none' (per-sample, what the SAM methods need), 'mean' or 'sum'.
    """

    def __init__(
        self, class_counts: Sequence[int] | Tensor, weight: Tensor | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        counts = as_class_counts(class_counts)
        self.register_buffer("class_counts", counts, persistent=False)
        c = counts.numel()
        self.register_buffer("scale", torch.ones(c, dtype=torch.float64), persistent=False)
        self.register_buffer("bias", torch.zeros(c, dtype=torch.float64), persistent=False)
        self.register_buffer("margin", torch.zeros(c, dtype=torch.float64), persistent=False)
        self.set_weight(weight)

    @property
    def num_classes(self) -> int:
        return self.class_counts.numel()

    def set_weight(self, weight: Tensor | None) -> None:
        """Replace the per-class weights (DRW switches them at an epoch)."""
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32)
            if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
                raise ValueError(f"weight must be finite and >= 0 per class, got {weight.tolist()}")
            if weight.shape != (self.num_classes,):
                raise ValueError(
                    f"weight must have one entry per class ({self.num_classes}), got shape "
                    f"{tuple(weight.shape)}"
                )
            weight = weight.to(self.scale.device)
        self.weight = weight

    def tables(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """``(scale a, bias b, margin m, weight w | None)``, each of length C."""
        return self.scale, self.bias, self.margin, self.weight

    def _check(self, logits: Tensor, targets: Tensor) -> None:
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"{type(self).__name__}: logits must be [B, {self.num_classes}] (class_counts has "
                f"{self.num_classes} classes), got {tuple(logits.shape)}"
            )

    def adjusted_logits(self, logits: Tensor, targets: Tensor) -> Tensor:
        """:math:`z'` (subclasses override with their published formula)."""
        return logits

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        self._check(logits, targets)
        w = None if self.weight is None else self.weight.to(logits.device, logits.dtype)
        return nn.functional.cross_entropy(
            self.adjusted_logits(logits, targets), targets, weight=w, reduction=self.reduction
        )
