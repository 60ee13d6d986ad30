"""Vector-scaling loss (Kini et al., 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._validation import check_finite, check_nonneg
from .base import LogitAdjustedLoss


class VSLoss(LogitAdjustedLoss):
    r"""CE on :math:`z_j / \Delta_j + \iota_j`, :math:`\Delta_j = (n_{max}/n_j)^{\gamma}`,
    :math:`\iota_j = \tau \log \pi_j` (defaults ``gamma=0.3, tau=1.0``)."""

    def __init__(
        self,
        class_counts: Sequence[int] | Tensor,
        gamma: float = 0.3,
        tau: float = 1.0,
        weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        check_nonneg("VS gamma", gamma)
        check_finite("VS tau", tau)
        super().__init__(class_counts, weight, reduction)
        n = self.class_counts.double()
        delta = (n.max() / n) ** gamma
        self.gamma, self.tau = float(gamma), float(tau)
        self.scale.copy_(1.0 / delta)
        self.bias.copy_(tau * torch.log(n / n.sum()))

    def adjusted_logits(self, logits: Tensor, targets: Tensor) -> Tensor:
        dev, dt = logits.device, logits.dtype
        return logits * self.scale.to(dev, dt) + self.bias.to(dev, dt)
