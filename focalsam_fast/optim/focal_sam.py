"""Focal-SAM (Li et al., ICML 2025), exactly as the official ``focal_sam.py`` + ``train_step.py``
(docs/spec.md §2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .. import kernels
from .._validation import check_batch, check_classes
from ..losses.base import LogitAdjustedLoss
from ..losses.coefficients import focal_coefficients
from .base import Closure, StepOutput
from .class_weighted import Objective, TwoObjectiveSAM
from .nonfinite import LOSS_EPS, LOSS_W


class FocalSAM(TwoObjectiveSAM):
    r"""Focal-SAM: class-wise sharpness penalties weighted by :math:`c_k = \lambda(1-\pi_k)^\gamma`.

    .. math::
        A &= \tfrac1B \textstyle\sum_i (1 - c_{y_i})\, l_i(w), \qquad
        B_w = \tfrac1B \textstyle\sum_i c_{y_i}\, l_i(w) \\
        \epsilon &= \rho\, \nabla B_w(w) / (\lVert \nabla B_w(w) \rVert_2 + 10^{-12}) \\
        g &= \nabla A(w) + \nabla B_w(w + \epsilon)
           = \nabla[L_B - \lambda L_B^\gamma](w) + \lambda \nabla L^\gamma_B(w + \epsilon)

    then the base optimizer applies ``g`` at the restored ``w``.  2 forward + 3 backward passes;
    ``gamma=0, lam=1`` is SAM, ``lam=0`` is the base optimizer on :math:`L_B`.

    Args:
        class_counts: training-set count per class (``pi_k = n_k / sum n``; never batch counts).
        gamma: focal exponent (>= 0).  lam: sharpness weight lambda (>= 0; > 1 is allowed).
        criterion: optional focalsam_fast loss; then the closure returns logits and the fused
            loss kernel (:func:`focalsam_fast.kernels.reference.focal_loss` and its native
            versions) gives the losses and both logit gradients without an autograd loss graph.
        Other arguments as :class:`SAMBase`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[Optimizer] = torch.optim.SGD,
        *,
        class_counts: Sequence[int] | Tensor,
        gamma: float = 1.0,
        lam: float = 1.0,
        rho: float = 0.05,
        criterion: LogitAdjustedLoss | None = None,
        **kwargs: Any,
    ) -> None:
        coeff = focal_coefficients(class_counts, gamma, lam)  # validates before anything else
        if criterion is not None and (
            not isinstance(criterion, LogitAdjustedLoss) or criterion.num_classes != coeff.numel()
        ):
            raise TypeError(
                "criterion= must be a focalsam_fast loss (CELoss, LALoss, LDAMLoss, VSLoss) built "
                f"for the same {coeff.numel()} classes, got {criterion!r}"
            )
        super().__init__(params, base_optimizer, rho=rho, num_classes=coeff.numel(), **kwargs)
        self.gamma, self.lam = float(gamma), float(lam)
        self.coefficients = coeff
        self.criterion = criterion

    def sample_weights(self, targets: Tensor, like: Tensor) -> Tensor:
        """``c_{y_i}`` for each sample, on ``like``'s device and dtype."""
        return self._gather(self.coefficients, "c", targets, like)

    def _objectives(self, targets: Tensor, like: Tensor) -> tuple[Objective, Objective]:
        r""":math:`A = \frac1B\sum_i (1 - c_{y_i}) l_i` and :math:`B_w = \frac1B\sum_i c_{y_i} l_i`."""
        c = self.sample_weights(targets, like)
        b = like.shape[0]
        return (lambda losses: ((1 - c) * losses).sum() / b), (lambda losses: (c * losses).sum() / b)

    def step(
        self,
        closure: Closure | None = None,
        targets: Tensor | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
    ) -> StepOutput:
        """One Focal-SAM step.  ``closure()`` re-runs the forward and returns per-sample losses
        (``reduction='none'``), or ``(losses, logits)``; with ``criterion=`` given at construction
        it returns the *logits* and the fused loss kernel computes losses and both logit
        gradients in one pass.  ``targets`` are the batch labels.  Returns the unweighted mean
        loss and the logits at ``w + eps``."""
        if self.criterion is None or closure is None:
            return super().step(closure, targets, grad_scaler)
        self._check_targets_early(targets)
        inv = self._begin(grad_scaler)
        return self._guarded(lambda: self._fused_loss_step(closure, targets, inv))

    def _logits(self, closure: Closure, targets: Tensor, slot: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Forward returning logits, then the fused loss: (logits, losses, grad_a, grad_b); under
        AMP both logit gradients come scaled by the loss scale (applied before rounding)."""
        with torch.enable_grad():
            logits = closure()
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(
                f"FocalSAM with criterion=: the closure must return logits [B, {self.num_classes}], got {got}"
            )
        check_classes(logits, self.num_classes, "FocalSAM with criterion=")
        check_batch(targets, logits.shape[0], "logit rows")
        ops = kernels.get_ops(self._impl_request, logits.device)
        loss_fn = ops.focal_loss
        scale, bias, margin, weight = (
            None if t is None else self._device_copy(name, t, logits.device)
            for name, t in zip(("a", "b", "m", "w"), self.criterion.tables())
        )
        coeff = self._gather_table(self.coefficients, "c", logits)
        losses, grad_a, grad_b = loss_fn(
            logits.detach(),
            targets.to(logits.device),
            coeff,
            scale,
            bias,
            margin,
            weight,
            grad_scale=self._loss_scale,
        )
        if self._checking:
            self._flags.note(slot, losses)
        return logits, losses, grad_a, grad_b

    def _device_copy(self, name: str, table: Tensor, device: torch.device) -> Tensor:
        """``table`` on ``device``, copied once per table object (tables are constants: DRW swaps in a new
        weight tensor, copied once): no host-to-device copy in a steady step."""
        key = ("loss-" + name, device)
        cached = self._tables.get(key)
        if cached is None or cached[0] is not table:
            cached = self._tables[key] = (table, table.to(device))
        return cached[1]

    def _fused_loss_step(self, closure: Closure, targets: Tensor, inv: float | Tensor) -> StepOutput:
        logits, _, grad_a, grad_b = self._logits(closure, targets, LOSS_W)
        self._keep_gradient_of(logits, grad_a)
        logits.backward(grad_b)

        def second() -> StepOutput:
            logits2, losses2, _, grad_b2 = self._logits(closure, targets, LOSS_EPS)
            self._before_last_backward()
            logits2.backward(grad_b2)
            return StepOutput(losses2.mean(), logits2.detach())

        return self._sam_tail(second, inv)
