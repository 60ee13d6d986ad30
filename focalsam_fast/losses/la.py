"""Logit-adjusted loss (Menon et al., 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._validation import check_finite
from .base import LogitAdjustedLoss


class LALoss(LogitAdjustedLoss):
    r"""CE on :math:`z_j + \tau \log(\pi_j + 10^{-9})` (``tau = 1``); predict with ``argmax z``."""

    def __init__(
        self, class_counts: Sequence[int] | Tensor, tau: float = 1.0, reduction: str = "mean"
    ) -> None:
        check_finite("LA tau", tau)
        super().__init__(class_counts, None, reduction)
        self.tau = float(tau)
        prior = self.class_counts.double() / self.class_counts.double().sum()
        self.bias.copy_(self.tau * torch.log(prior + 1e-9))

    def adjusted_logits(self, logits: Tensor, targets: Tensor) -> Tensor:
        return logits + self.bias.to(logits.device, logits.dtype)
