"""SAM (Foret et al., 2021), as the official Focal-SAM repository's ``sam.py`` (docs/spec.md §3)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Closure, SAMBase, StepOutput
from .nonfinite import LOSS_W


def _mean(losses: Tensor) -> Tensor:
    return losses.mean() if losses.dim() else losses


class SAM(SAMBase):
    r"""Sharpness-Aware Minimization wrapping a base optimizer.

    .. math::
        \epsilon = \rho\, \frac{g(w)}{\lVert g(w) \rVert_2 + 10^{-12}}, \qquad
        w \leftarrow \operatorname{base}\big(w,\; \nabla L_B(w + \epsilon)\big)

    with :math:`g = \nabla L_B` (adaptive: :math:`\epsilon = \rho\, w^2 g / \lVert |w| g \rVert`),
    one global norm over all param groups and :math:`\rho` per group.  2 forward + 2 backward.

    One-call use::

        def closure():
            return criterion(model(x), y), None   # per-sample or mean loss (and optional logits)
        loss, logits = optimizer.step(closure)

    Stage-by-stage use (as the reference): ``loss.backward(); opt.first_step();
    loss2.backward(); opt.second_step()``.
    """

    per_sample = False  # a scalar (mean) loss is fine for plain SAM
    stages = ("first_step", "second_step")

    def first_step(self) -> None:
        """Perturb :math:`w \\to w + \\epsilon` from the current gradients."""
        self._run_stage("first_step", self.perturb)

    def second_step(self) -> None:
        """Restore :math:`w` and apply the base optimizer with the gradient at :math:`w + \\epsilon`."""
        self._run_stage("second_step", self.restore_and_update)

    def step(
        self,
        closure: Closure | None = None,
        targets: Tensor | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        **_: Any,
    ) -> StepOutput:
        """Run a whole SAM step from ``closure`` (re-runs the forward, returns loss[, logits])."""
        if closure is None:
            raise TypeError(
                "SAM.step needs a closure that re-runs the forward and returns the loss "
                "(or use first_step()/second_step() around your own backward passes)"
            )
        inv = self._begin(grad_scaler)
        return self._guarded(lambda: self._sam_step(closure, inv))

    def _sam_step(self, closure: Closure, inv: float | Tensor) -> StepOutput:
        losses, _ = self._forward(closure, False, LOSS_W)
        self._backward(_mean(losses))
        return self._sam_tail(lambda: self._weighted_pass(closure, _mean), inv)
