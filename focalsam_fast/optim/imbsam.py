"""ImbSAM (Zhou et al., ICCV 2023), as the official ``cool-xuan/Imbalanced_SAM`` (SPEC §4)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .._validation import as_class_counts, check_nonneg, check_targets
from .base import Closure, StepOutput
from .focal_sam import ClassWeightedSAM


class ImbSAM(ClassWeightedSAM):
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

    def first_step(self) -> None:
        """After ``backward(L_H, retain_graph=True)``: keep ``grad L_H(w)``."""
        self.stash_grads()

    def second_step(self) -> None:
        """After ``backward(L_T)``: perturb along ``grad L_T(w)``."""
        self.perturb()

    def third_step(self) -> None:
        """After ``backward(L_T(w + eps))``: restore, ``g = g_T + g_H``, base step."""
        self.restore_and_update()

    def step(self, closure: Closure | None = None, targets: Tensor | None = None,
             grad_scaler: torch.amp.GradScaler | None = None) -> StepOutput:
        """One ImbSAM step; ``closure()`` returns per-sample losses (or ``(losses, logits)``)."""
        if closure is None:
            raise TypeError("ImbSAM.step needs a closure returning per-sample losses (and logits)")
        self._check_targets_early(targets)
        inv = self._begin(grad_scaler)
        losses, logits = self._forward(closure, True, "at w (first forward)")
        if self.check_inputs:
            check_targets(targets, self.num_classes, losses.shape[0])
        tail = self._gather(self.is_tail, "tail", targets, losses)
        b = losses.shape[0]
        t = self.tail_weight
        self._backward(((1 - tail) * losses).sum() / b, retain_graph=True)
        self.stash_grads()
        self._backward(t * (tail * losses).sum() / b)
        first = StepOutput(losses.detach().mean(), None if logits is None else logits.detach())
        return self._sam_tail(
            lambda: self._weighted_pass(closure, lambda l2: t * (tail * l2).sum() / b), inv, first)
