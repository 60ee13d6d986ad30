"""ImbSAM (Zhou et al., ICCV 2023), as the official ``cool-xuan/Imbalanced_SAM`` (docs/spec.md §4)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .._validation import as_class_counts, check_nonneg
from .class_weighted import Objective, TwoObjectiveSAM


class ImbSAM(TwoObjectiveSAM):
    r"""SAM on the tail classes only.

    Tail :math:`T = \{k : n_k < \eta\}`, head :math:`H` the rest, tail weight :math:`t`:

    .. math::
        L_H = \tfrac1B \textstyle\sum_{y_i\in H} l_i, \quad
        L_T = \tfrac{t}{B} \textstyle\sum_{y_i \in T} l_i, \quad
        \epsilon = \rho\,\nabla L_T(w)/(\lVert\nabla L_T(w)\rVert + 10^{-12}), \quad
        g = \nabla L_H(w) + \nabla L_T(w+\epsilon)

    2 forward + 3 backward passes.  A batch without tail samples gets ``eps = 0`` (plain
    base-optimizer step on ``L_H``).

    Args:
        class_counts: training counts per class.
        tail_threshold: eta; classes with fewer training samples are tail (no default: it is
            per data set, e.g. 20 for CIFAR-100-LT, 200 for the CIFAR-10-LT tail group).
        tail_weight: t; 1 as in the paper's Eq. (1), 2 reproduces the official code.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[Optimizer] = torch.optim.SGD,
        *,
        class_counts: Sequence[int] | Tensor,
        tail_threshold: float,
        tail_weight: float = 1.0,
        rho: float = 0.05,
        **kwargs: Any,
    ) -> None:
        counts = as_class_counts(class_counts)
        check_nonneg("tail_threshold", tail_threshold)
        check_nonneg("tail_weight", tail_weight)
        super().__init__(params, base_optimizer, rho=rho, num_classes=counts.numel(), **kwargs)
        self.tail_threshold, self.tail_weight = float(tail_threshold), float(tail_weight)
        self.is_tail = (counts < tail_threshold).to(torch.float64)

    def _objectives(self, targets: Tensor, like: Tensor) -> tuple[Objective, Objective]:
        """:math:`L_H` and :math:`L_T` (the official code's rounding order)."""
        tail = self._gather(self.is_tail, "tail", targets, like)
        b, t = like.shape[0], self.tail_weight
        return (
            (lambda losses: ((1 - tail) * losses).sum() / b),
            (lambda losses: t * (tail * losses).sum() / b),
        )
