"""LDAM loss (Cao et al., 2019); its cosine head is :class:`focalsam_fast.models.NormedLinear`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_nonneg
from .base import LogitAdjustedLoss


class LDAMLoss(LogitAdjustedLoss):
    r""":math:`m_j \propto n_j^{-1/4}` scaled to :math:`\max_j m_j` = ``max_m``; CE on
    :math:`s\,(z - m_y e_y)`, ``s = 30``."""

    def __init__(
        self,
        class_counts: Sequence[int] | Tensor,
        max_m: float = 0.5,
        s: float = 30.0,
        weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        check_nonneg("LDAM max_m", max_m)
        check_nonneg("LDAM s", s)
        if s == 0:
            raise ValueError("LDAM s must be > 0 (it scales every logit), got 0")
        super().__init__(class_counts, weight, reduction)
        self.s, self.max_m = float(s), float(max_m)
        m = 1.0 / torch.sqrt(torch.sqrt(self.class_counts.double()))
        m = m * (max_m / m.max())
        self.register_buffer("margins", m, persistent=False)
        self.scale.fill_(self.s)
        self.margin.copy_(self.s * m)

    def adjusted_logits(self, logits: Tensor, targets: Tensor) -> Tensor:
        onehot = F.one_hot(targets, self.num_classes).to(logits.dtype)
        return self.s * (logits - self.margins.to(logits.device, logits.dtype) * onehot)
