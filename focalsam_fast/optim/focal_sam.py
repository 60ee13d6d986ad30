"""Focal-SAM (Li et al., ICML 2025), exactly as the official ``focal_sam.py`` + ``train_step.py``
(SPEC §2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .. import kernels
from .._validation import check_finite_loss, check_targets
from ..losses.base import LogitAdjustedLoss
from ..losses.coefficients import focal_coefficients
from .base import Closure, SAMBase, StepOutput


class ClassWeightedSAM(SAMBase):
    """A SAM method whose passes weight each sample by a per-class table (targets required)."""

    def __init__(self, params: Iterable[Any], base_optimizer: type[Optimizer], *,
                 num_classes: int, **kwargs: Any) -> None:
        super().__init__(params, base_optimizer, **kwargs)
        self.num_classes = num_classes
        self._tables: dict[tuple[Any, ...], Tensor] = {}

    def _gather_table(self, table: Tensor, name: str, like: Tensor) -> Tensor:
        """``table`` on ``like``'s device and dtype (the device copy is cached)."""
        key = (name, like.device, like.dtype)
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = table.to(device=like.device, dtype=like.dtype)
        return t

    def _gather(self, table: Tensor, name: str, targets: Tensor, like: Tensor) -> Tensor:
        """``table[targets]`` on the losses' device/dtype."""
        return self._gather_table(table, name, like)[targets.to(like.device)]

    def _check_targets_early(self, targets: Tensor | None) -> None:
        if targets is None:
            raise TypeError(f"{type(self).__name__}.step needs targets= (the batch labels)")
        if self.check_inputs:
            check_targets(targets, self.num_classes)


class FocalSAM(ClassWeightedSAM):
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
        if criterion is not None and (not isinstance(criterion, LogitAdjustedLoss)
                                      or criterion.num_classes != coeff.numel()):
            raise TypeError(
                "criterion= must be a focalsam_fast loss (CELoss, LALoss, LDAMLoss, VSLoss) built "
                f"for the same {coeff.numel()} classes, got {criterion!r}"
            )
        super().__init__(params, base_optimizer, rho=rho, num_classes=coeff.numel(), **kwargs)
        self.gamma, self.lam = float(gamma), float(lam)
        self.coefficients = coeff
        self.criterion = criterion

    def first_step(self) -> None:
        """After ``backward(A, retain_graph=True)``: keep ``g2 = grad A(w)``."""
        self.stash_grads()

    def second_step(self) -> None:
        """After ``backward(B_w)``: perturb ``w -> w + eps`` along ``grad B_w(w)``."""
        self.perturb()

    def third_step(self) -> None:
        """After ``backward(B_w(w + eps))``: restore ``w``, ``g = lambda g1 + g2``, base step."""
        self.restore_and_update()

    def sample_weights(self, targets: Tensor, like: Tensor) -> Tensor:
        """``c_{y_i}`` for each sample, on ``like``'s device and dtype."""
        return self._gather(self.coefficients, "c", targets, like)

    def step(self, closure: Closure | None = None, targets: Tensor | None = None,
             grad_scaler: torch.amp.GradScaler | None = None) -> StepOutput:
        """One Focal-SAM step.  ``closure()`` re-runs the forward and returns per-sample losses
        (``reduction='none'``), or ``(losses, logits)``; with ``criterion=`` given at construction
        it returns the *logits* and the fused loss kernel computes losses and both logit
        gradients in one pass.  ``targets`` are the batch labels.  Returns the unweighted mean
        loss and the logits at ``w + eps``."""
        if closure is None:
            raise TypeError("FocalSAM.step needs a closure returning per-sample losses (and logits)")
        self._check_targets_early(targets)
        inv = self._begin(grad_scaler)
        if self.criterion is not None:
            return self._fused_loss_step(closure, targets, inv)
        losses, logits = self._forward(closure, True, "at w (first forward)")
        if self.check_inputs:
            check_targets(targets, self.num_classes, losses.shape[0])
        c = self.sample_weights(targets, losses)
        b = losses.shape[0]
        self._backward(((1 - c) * losses).sum() / b, retain_graph=True)
        self.stash_grads()
        self._backward((c * losses).sum() / b)
        first = StepOutput(losses.detach().mean(), None if logits is None else logits.detach())
        return self._sam_tail(
            lambda: self._weighted_pass(closure, lambda l2: (c * l2).sum() / b), inv, first)

    def _logits(self, closure: Closure, targets: Tensor, where: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Forward returning logits, then the fused loss: (logits, losses, grad_a, grad_b)."""
        with torch.enable_grad():
            logits = closure()
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[1] != self.num_classes:
            got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(
                f"FocalSAM with criterion=: the closure must return logits [B, {self.num_classes}] "
                f"({where}), got {got}"
            )
        if self.check_inputs:
            check_targets(targets, self.num_classes, logits.shape[0])
        ops = kernels.get_ops(self._impl_request, logits.device)
        loss_fn = getattr(ops, "focal_loss", kernels.reference.focal_loss)
        scale, bias, margin, weight = (None if t is None else t.to(logits.device)
                                       for t in self.criterion.tables())
        coeff = self._gather_table(self.coefficients, "c", logits)
        losses, grad_a, grad_b = loss_fn(logits.detach(), targets.to(logits.device), coeff, scale,
                                         bias, margin, weight)
        if self.check_inputs and not self._amp:
            check_finite_loss(losses, where)
        return logits, losses, grad_a, grad_b

    def _fused_loss_step(self, closure: Closure, targets: Tensor, inv: float | Tensor) -> StepOutput:
        s = self._scaler.get_scale() if self._amp else 1.0
        logits, losses, grad_a, grad_b = self._logits(closure, targets, "at w (first forward)")
        logits.backward(grad_a * s if self._amp else grad_a, retain_graph=True)
        self.stash_grads()
        logits.backward(grad_b * s if self._amp else grad_b)
        first = StepOutput(losses.mean(), logits.detach())

        def second() -> StepOutput:
            logits2, losses2, _, grad_b2 = self._logits(closure, targets, "at w + eps (second forward)")
            logits2.backward(grad_b2 * s if self._amp else grad_b2)
            return StepOutput(losses2.mean(), logits2.detach())

        return self._sam_tail(second, inv, first)
