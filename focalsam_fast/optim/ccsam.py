"""CC-SAM (Zhou et al., CVPR 2023), stage 1 of the official ``zzpustc/CC-SAM`` (docs/spec.md §5)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from .._validation import as_class_counts, check_batch, check_classes, check_nonneg, check_per_sample
from . import ccsam_dist, ccsam_layers, ccsam_linear
from .base import Closure, StepOutput
from .class_weighted import ClassWeightedSAM
from .nonfinite import LOSS_EPS, LOSS_W

Criterion = Callable[[Tensor, Tensor], Tensor]


PERTURB_MODES = ("head", "last", "all")


def _per_sample_ce(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits, targets, reduction="none")


class CCSAM(ClassWeightedSAM):
    r"""Class-conditional SAM: one perturbation per class present in the batch.

    For each class :math:`c` in the batch, with :math:`g_c^t` the gradient of the class-mean clean
    loss w.r.t. tensor :math:`t` of the perturbed subset (:math:`k` elements in all):

    .. math::
        r_c^t &= \nu\,\frac{\sqrt{\lVert\theta^t\rVert}}{\sqrt{\lVert g_c^t\rVert}\,\sqrt2\,
                 \max(n_c - 1, 1)^{1/4}\, k^{1/4}}, \qquad
        \epsilon_c^t = r_c^t \sqrt{k}\; g_c^t / \lVert g_c^t\rVert \\
        L &= (1-\beta)\,\tfrac1B\textstyle\sum_i l_i(\theta)
             + \beta\,\tfrac1B \textstyle\sum_c \sum_{y_i = c} l_i(\theta + \epsilon_c)

    then one backward of :math:`L` and one base-optimizer step.  :math:`\lVert\theta^t\rVert` is
    the norm of tensor :math:`t` as in the official code (``param_norm='tensor'``) or of the whole
    subset (``'global'``, docs/spec.md §5's reading).  ``n_c = 1`` is guarded (**Decision**), a zero class
    gradient gives a zero perturbation.

    Modes:

    * ``perturb='head'`` (official): ``closure()`` returns backbone *features*; the ``head``
      module's parameters are perturbed and class ``c``'s logits recomputed from the same
      features with :func:`torch.func.functional_call` at :math:`\theta + \epsilon_c`, so the
      backbone runs once.  The gradient of the perturbed term is taken at
      :math:`\theta + \epsilon_c` (the official code back-propagates the feature gradient through
      :math:`\theta`; with :math:`\nu = 10^{-6}` the difference is ~1e-6 relative).
    * ``perturb='all'`` (the paper's Eq. (2)-(3) form): every trainable parameter is perturbed;
      for each class the closure re-runs the whole forward at :math:`\theta + \epsilon_c` and the
      class term is back-propagated at once (1 + 2U backward passes for U classes).
    * ``perturb='last'`` (the protocol the Focal-SAM paper timed in its Table 1: "perturbing
      only the last few layers"): ``closure()`` returns the features of the part before the last
      layers, computed once; ``head`` is the *last layers* module mapping them to logits (e.g.
      the last stage, the pooling and the classifier), and every trainable parameter of it is
      perturbed per class, with one backward (for :math:`g_c`) and one forward (at
      :math:`\theta + \epsilon_c`) through those layers per class present (see
      :mod:`.ccsam_layers`; never the closed form of ``'head'``).  Its cost grows with the
      classes per batch; ``'head'`` with a linear head does not.

    Under torch.distributed the closed form (``'head'``, ``nn.Linear`` head, fused impl) is the
    global-batch step with one gradient all-reduce (:mod:`.ccsam_dist`); the other forms raise.

    Args:
        head: the module applied to the closure's output to give the logits: the classifier
            (``'head'``, ``'all'``) or the last layers ending in it (``'last'``).
        class_counts: training counts ``n_c``.
        noise_ratio: :math:`\nu` (1e-6 in the released configs).  beta: :math:`\beta` (0.3 for
            CIFAR-10, 0.5 for CIFAR-100).
        criterion: per-sample loss ``criterion(logits, targets)``; default cross-entropy.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[Optimizer] = torch.optim.SGD,
        *,
        head: nn.Module,
        class_counts: Sequence[int] | Tensor,
        noise_ratio: float = 1e-6,
        beta: float = 0.3,
        perturb: str = "head",
        param_norm: str = "tensor",
        criterion: Criterion = _per_sample_ce,
        **kwargs: Any,
    ) -> None:
        counts = as_class_counts(class_counts)
        check_nonneg("noise_ratio", noise_ratio)
        if not 0.0 <= float(beta) <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if perturb not in PERTURB_MODES:
            raise ValueError(f"perturb must be one of {', '.join(map(repr, PERTURB_MODES))}, got {perturb!r}")
        if param_norm not in ("tensor", "global"):
            raise ValueError(f"param_norm must be 'tensor' or 'global', got {param_norm!r}")
        if not isinstance(head, nn.Module):
            raise TypeError(f"head must be the classifier nn.Module, got {type(head).__name__}")
        kwargs.setdefault("rho", 0.0)
        super().__init__(params, base_optimizer, num_classes=counts.numel(), **kwargs)
        self.head, self.criterion = head, criterion
        self.noise_ratio, self.beta = float(noise_ratio), float(beta)
        self.mode, self.param_norm = perturb, param_norm
        self.class_counts = counts

    def _subset(self) -> list[tuple[str, Tensor]]:
        if self.mode in ("head", "last"):
            return [(n, p) for n, p in self.head.named_parameters() if p.requires_grad]
        return [
            (str(i), p)
            for i, p in enumerate(p for g in self.param_groups for p in g["params"] if p.requires_grad)
        ]

    def theta_norms(self, params: Sequence[Tensor]) -> list[Tensor]:
        """:math:`\\lVert\\theta^t\\rVert` of every subset tensor (one norm for all under
        ``param_norm='global'``)."""
        norms = [p.detach().norm() for p in params]
        if self.param_norm == "global":
            return [torch.linalg.vector_norm(torch.stack(norms))] * len(norms)
        return norms

    def class_perturbation(
        self,
        grads: Sequence[Tensor],
        params: Sequence[Tensor],
        count: float,
        theta: Sequence[Tensor] | None = None,
    ) -> list[Tensor]:
        """:math:`\\epsilon_c^t` for every tensor of the subset (see the class docstring); ``theta``:
        :meth:`theta_norms` of ``params`` when already computed for this step."""
        k = sum(p.numel() for p in params)
        denom = math.sqrt(2.0) * max(count - 1.0, 1.0) ** 0.25 * k**0.25
        theta = self.theta_norms(params) if theta is None else theta
        eps = []
        for g, t in zip(grads, theta):
            g_norm = g.norm()
            r = self.noise_ratio * t.sqrt() / g_norm.sqrt() / denom
            e = r * math.sqrt(k) * g / g_norm
            eps.append(torch.where(g_norm > 0, e, torch.zeros_like(e)))
        return eps

    def _features(self, closure: Closure, where: str) -> Tensor:
        with torch.enable_grad():
            out = closure()
        if not isinstance(out, Tensor) or out.dim() < 2:
            raise TypeError(
                f"CCSAM: the closure must return the backbone features [B, ...] that `head` maps "
                f"to logits ({where}), got {type(out).__name__}"
                + (f" of shape {tuple(out.shape)}" if isinstance(out, Tensor) else "")
            )
        return out

    def _losses(self, logits: Tensor, targets: Tensor) -> Tensor:
        losses = self.criterion(logits, targets)
        check_per_sample(losses, "CCSAM criterion")
        return losses

    def _closed_form(self, feats: Tensor) -> bool:
        """The fused impls perturb a plain linear head in closed form (:mod:`.ccsam_linear`);
        ``reference`` keeps the official per-class gradients and perturbed weights."""
        return (
            self.mode == "head"
            and type(self.head) is nn.Linear
            and feats.dim() == 2
            and not self._official_passes
        )

    def _finish_head(
        self, clean: Tensor, pert: list[Tensor], b: int, losses: Tensor, logits: Tensor
    ) -> StepOutput:
        """Head mode's one backward of the clean and perturbed terms, then the update."""
        perturbed = torch.cat(pert)
        if self._checking:
            self._flags.note(LOSS_EPS, perturbed)
        self._backward(clean + self.beta * perturbed.sum() / b)
        if self.distributed():
            ccsam_dist.all_reduce_mean([p for g in self.param_groups for p in g["params"] if p.requires_grad])
        self.restore_and_update(self._scaler)
        return StepOutput(losses.detach().mean(), logits.detach())

    def step(
        self,
        closure: Closure | None = None,
        targets: Tensor | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
    ) -> StepOutput:
        """One CC-SAM step; returns the clean mean loss and the clean logits."""
        if closure is None:
            raise TypeError("CCSAM.step needs a closure returning the backbone features")
        self._check_targets_early(targets)
        self._begin(grad_scaler)
        return self._guarded(lambda: self._cc_step(closure, targets))

    def _cc_step(self, closure: Closure, targets: Tensor) -> StepOutput:
        feats = self._features(closure, "first forward")
        logits = self.head(feats)
        check_classes(logits, self.num_classes, "CCSAM")
        check_batch(targets, logits.shape[0], "logit rows")
        losses = self._losses(logits, targets)
        b = losses.shape[0]
        if self._checking:
            self._flags.note(LOSS_W, losses)
        subset = self._subset()
        if not subset:
            raise ValueError("CCSAM: the perturbed subset has no trainable parameter")
        params = [p for _, p in subset]
        classes = torch.unique(targets).tolist()
        idx = {c: (targets == c).nonzero().flatten().to(logits.device) for c in classes}
        counts = self.class_counts.tolist()
        clean = (1 - self.beta) * losses.mean()
        closed_form = self._closed_form(feats)
        if self.distributed() and not closed_form:
            raise RuntimeError(
                "CCSAM under torch.distributed runs the closed form only (perturb='head', an nn.Linear "
                f"head on 2-D features, a fused impl); got perturb={self.mode!r}, head "
                f"{type(self.head).__name__}, features of {feats.dim()} dims, impl {self.impl!r}: the "
                "other forms would need every class gradient all-reduced (run them on one process)"
            )
        if closed_form:
            delta = torch.autograd.grad(losses.sum(), logits, retain_graph=True)[0].detach()
            scale = ccsam_linear.scales(self.noise_ratio, dict(subset), self.param_norm == "global")
            f_all, d_all, y_all = (
                ccsam_dist.gather_batch(feats, delta, targets)
                if self.distributed()
                else (feats.detach(), delta, targets)
            )
            pert = []
            for c in classes:
                rows = (y_all == c).nonzero().flatten()
                pert.append(
                    self._losses(
                        ccsam_linear.class_logits(
                            self.head,
                            feats[idx[c]],
                            f_all[rows],
                            d_all[rows],
                            functools.partial(scale, counts[c]),
                        ),
                        targets[idx[c]],
                    )
                )
            return self._finish_head(clean, pert, b, losses, logits)
        if self.mode in ("head", "last"):
            theta = self.theta_norms(params)
            pert = ccsam_layers.perturbed_losses(
                self.head,
                feats,
                targets,
                losses,
                subset,
                idx,
                counts,
                lambda grads, count: self.class_perturbation(grads, params, count, theta),
                self._losses,
            )
            return self._finish_head(clean, pert, b, losses, logits)
        class_grads = {
            c: [
                torch.zeros_like(p) if g is None else g
                for g, p in zip(
                    torch.autograd.grad(losses[idx[c]].mean(), params, retain_graph=True, allow_unused=True),
                    params,
                )
            ]
            for c in classes
        }
        self._backward(clean)
        for c in classes:
            with torch.no_grad():
                eps = self.class_perturbation(class_grads[c], params, counts[c])
                saved = [p.data for p in params]
                for p, e in zip(params, eps):
                    p.data = p.data + e
            try:
                out = self.head(self._features(closure, f"at theta + eps_{c}")[idx[c]])
                class_losses = self._losses(out, targets[idx[c]])
                if self._checking:
                    self._flags.note(LOSS_EPS, class_losses)
                self._backward(self.beta * class_losses.sum() / b)
            finally:
                for p, s in zip(params, saved):
                    p.data = s
        self.restore_and_update(self._scaler)
        return StepOutput(losses.detach().mean(), logits.detach())
