"""Shared machinery of the SAM family: wrapping a base optimizer, the perturb/restore passes,
closure handling, AMP and state.

The three primitive stages below are the whole optimizer side of every method:

* :meth:`SAMBase.stash_grads` keeps the current gradients (``g2``) for the final update;
* :meth:`SAMBase.perturb` computes one global norm over every parameter of every group that has
  a gradient and moves :math:`w \\to w + \\epsilon`,
  :math:`\\epsilon_p = \\rho_{group}\\, a_p h_p / (\\lVert a \\odot h \\rVert + 10^{-12})`
  (:math:`a_p = p^2` adaptive, else 1; the norm is of :math:`|p| h` when adaptive);
* :meth:`SAMBase.restore_and_update` restores :math:`w` exactly, sets
  :math:`g = g_{now} + g2` and runs the base optimizer.

``impl='reference'`` runs them as the official code does (clone, per-tensor ops, base optimizer
step); the other implementations run the fused multi-tensor kernels of
:mod:`focalsam_fast.kernels` (storage swap instead of clone, one combined SGD pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.optim import Optimizer

from .. import kernels
from .._validation import check_finite_loss, check_nonneg, check_per_sample

Closure = Callable[[], Any]


class StepOutput(NamedTuple):
    """What a closure-driven ``step`` returns: the unweighted mean loss and the logits, both from
    the last forward pass (at :math:`w + \\epsilon` for the SAM methods), detached."""

    loss: Tensor
    logits: Tensor | None


def _unpack(out: Any, who: str, per_sample: bool) -> tuple[Tensor, Tensor | None]:
    """Split a closure result into (losses, logits) and validate the losses."""
    if isinstance(out, (tuple, list)):
        if len(out) != 2:
            raise ValueError(
                f"{who}: the closure must return losses or (losses, logits), got a "
                f"{type(out).__name__} of length {len(out)}"
            )
        losses, logits = out
    else:
        losses, logits = out, None
    if per_sample:
        check_per_sample(losses, who)
    elif not isinstance(losses, Tensor):
        raise TypeError(f"{who}: the closure must return a loss tensor, got {type(losses).__name__}")
    return losses, logits


class SAMBase(Optimizer):
    """Base of :class:`SAM`, :class:`ImbSAM`, :class:`CCSAM` and :class:`FocalSAM`.

    Args:
        params: parameters or param groups (a group may set its own ``rho``, ``adaptive`` and any
            base-optimizer option such as ``lr``).
        base_optimizer: the optimizer *class* that applies the final update (default SGD).
        rho: perturbation radius (>= 0).
        adaptive: adaptive SAM (ASAM) scaling.
        impl: ``'auto'`` or one of :data:`focalsam_fast.kernels.IMPLS`.
        check_inputs: validate labels and loss finiteness each step (costs a host sync; turn off
            for CUDA-graph capture).
        **base_kwargs: passed to ``base_optimizer`` (e.g. ``lr``, ``momentum``, ``weight_decay``).
    """

    per_sample = True  # closures must return per-sample losses (reduction='none')

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        base_optimizer: type[Optimizer] = torch.optim.SGD,
        *,
        rho: float = 0.05,
        adaptive: bool = False,
        impl: str = "auto",
        check_inputs: bool = True,
        **base_kwargs: Any,
    ) -> None:
        check_nonneg("rho", rho)
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, Optimizer)):
            raise TypeError(
                "base_optimizer must be an optimizer class such as torch.optim.SGD (the class, "
                f"not an instance), got {base_optimizer!r}"
            )
        if impl != "auto" and impl not in kernels.IMPLS:
            raise ValueError(f"unknown impl {impl!r}; valid: 'auto', " + ", ".join(kernels.IMPLS))
        defaults = dict(rho=rho, adaptive=adaptive, **base_kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.check_inputs = check_inputs
        self._buffers: dict[Tensor, tuple[Tensor, Tensor]] = {}
        self._scaler: torch.amp.GradScaler | None = None
        self._amp = False
        self._impl_request = impl
        self._group_impls = [self._resolve(group) for group in self.param_groups]

    # ----------------------------------------------------------------------------- dispatch
    def _resolve(self, group: dict[str, Any]) -> str:
        dev = group["params"][0].device if group["params"] else torch.device("cpu")
        return kernels.resolve(self._impl_request, dev)

    def _refresh_impls(self) -> None:
        if len(self._group_impls) != len(self.param_groups):  # groups added later
            self._group_impls = [self._resolve(g) for g in self.param_groups]

    @property
    def impl(self) -> str:
        """The implementation each param group runs (one name when all groups agree)."""
        self._refresh_impls()
        names = sorted(set(self._group_impls))
        return names[0] if len(names) == 1 else ",".join(self._group_impls)

    def _ops(self, index: int) -> ModuleType:
        self._refresh_impls()
        return kernels.get_ops(self._group_impls[index], self.param_groups[index]["params"][0].device)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapper and the base optimizer (they share the group dicts)."""
        if "rho" in param_group:
            check_nonneg(f"rho of param group {len(self.param_groups)}", param_group["rho"])
        super().add_param_group(param_group)
        if hasattr(self, "base_optimizer"):
            group = self.param_groups[-1]
            base_groups = self.base_optimizer.param_groups
            if not base_groups or base_groups[-1] is not group:
                self.base_optimizer.add_param_group(group)
                self.base_optimizer.param_groups[-1] = group

    # ----------------------------------------------------------------------------- stages
    def _grad_params(self, group: dict[str, Any]) -> list[Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def stash_grads(self) -> None:
        """Keep the current gradient of every parameter as ``g2`` and clear ``.grad``.

        Reference: a clone (as the official code).  Fused paths move the tensor itself into
        the state (zero bytes copied); the next backward allocates a fresh ``.grad``.
        """
        for i, group in enumerate(self.param_groups):
            copy = self._group_impls[i] == "reference"
            for p in self._grad_params(group):
                self.state[p]["stash"] = p.grad.clone() if copy else p.grad
                p.grad = None

    def grad_norm(self) -> Tensor:
        r"""One global norm :math:`\lVert a \odot g\rVert_2` over all groups (fp32/fp64 on device)."""
        sq: list[Tensor] = []
        for i, group in enumerate(self.param_groups):
            ps = self._grad_params(group)
            if ps:
                grads = [p.grad for p in ps]
                sq.append(self._ops(i).sq_norm(grads, ps if group["adaptive"] else None))
        if not sq:
            raise RuntimeError("no parameter has a gradient: did the closure's loss use the model?")
        dev = sq[0].device
        return torch.stack([s.to(dev, torch.float64 if s.dtype == torch.float64 else torch.float32)
                            for s in sq]).sum().sqrt()

    @torch.no_grad()
    def perturb(self, inv_scale: float | Tensor = 1.0, skip_nonfinite: bool = False) -> bool:
        r"""Save :math:`w` and move to :math:`w + \epsilon` (then clear ``.grad``).

        ``inv_scale`` is 1 / the GradScaler scale under AMP (``eps`` is then independent of the
        scale).  With ``skip_nonfinite`` a non-finite norm returns ``False`` and changes nothing.
        """
        norm = self.grad_norm()
        if skip_nonfinite and not bool(torch.isfinite(norm)):
            return False
        for i, group in enumerate(self.param_groups):
            ps = self._grad_params(group)
            if not ps:
                continue
            grads = [p.grad for p in ps]
            if self._group_impls[i] == "reference":
                # fp32 scale for 16-bit params (SPEC §2 Decision: no underflow of the guard)
                scale = group["rho"] * inv_scale / (norm * inv_scale + kernels.reference.NORM_EPS)
                for p, g in zip(ps, grads):
                    self.state[p]["saved"] = p.data.clone()
                    e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * g * scale.to(
                        kernels.reference.acc_dtype(p.dtype))
                    p.add_(e_w)
            else:
                pairs = [self._double_buffer(p) for p in ps]
                out = [b for _, b in pairs]
                self._ops(i).perturb(ps, grads, out, norm, group["rho"], group["adaptive"], inv_scale)
                for p, (a, b) in zip(ps, pairs):
                    self.state[p]["saved"] = a
                    p.data = b
            for p in ps:
                p.grad = None
        return True

    def _double_buffer(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """``(w storage, spare storage)`` of ``p`` for the storage swap, made once and reused
        (no allocation and no dispatched op per step); re-made if ``p`` got new storage."""
        pair = self._buffers.get(p)
        if pair is None or pair[0].data_ptr() != p.data_ptr() or pair[0].shape != p.shape:
            pair = self._buffers[p] = (p.detach(), torch.empty_like(p))
        return pair

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the exact saved weights of every perturbed parameter (also those that got no
        gradient in the pass at :math:`w + \\epsilon`)."""
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "saved" in st:
                    p.data = st.pop("saved")

    def _fused_sgd(self, i: int, group: dict[str, Any]) -> bool:
        return (
            type(self.base_optimizer) is torch.optim.SGD
            and self._group_impls[i] != "reference"
            and not group.get("differentiable", False)
        )

    @torch.no_grad()
    def restore_and_update(self, grad_scaler: torch.amp.GradScaler | None = None) -> None:
        r"""Restore :math:`w`, set :math:`g = g_{now} + g2`, apply the base optimizer, zero grads.

        With a ``grad_scaler`` the gradients are unscaled and the base step is skipped (weights
        and momentum unchanged) when any is non-finite; the scaler is then updated once.
        """
        self.restore()
        use_scaler = grad_scaler is not None and grad_scaler.is_enabled()
        for i, group in enumerate(self.param_groups):
            ps = [p for p in group["params"] if p.grad is not None or "stash" in self.state.get(p, {})]
            if not ps:
                continue
            if not use_scaler and self._fused_sgd(i, group):
                self._sgd_group(i, group, ps)
            else:
                self._combine(i, ps)
        if use_scaler:
            grad_scaler.step(self.base_optimizer)
            grad_scaler.update()
        elif not all(self._fused_sgd(i, g) for i, g in enumerate(self.param_groups)):
            self.base_optimizer.step()
        self._drop_stashes()
        self.zero_grad()

    def _combine(self, i: int, ps: list[Tensor]) -> None:
        """``grad <- grad + stash`` for the base optimizer's own step: one multi-tensor add
        (``torch._foreach_add_``) on the fused paths, the official per-tensor add on ``reference``;
        a parameter with only one of the two gradients keeps that one."""
        both: tuple[list[Tensor], list[Tensor]] = ([], [])
        for p in ps:
            stash = self.state[p].pop("stash", None)
            if stash is None:
                continue
            if p.grad is None:
                p.grad = stash
            else:
                both[0].append(p.grad)
                both[1].append(stash)
        if self._group_impls[i] == "reference":
            for g, stash in zip(*both):
                g.add_(stash)
        elif both[0]:
            torch._foreach_add_(*both)

    def _sgd_group(self, i: int, group: dict[str, Any], ps: list[Tensor]) -> None:
        """One fused pass: ``g = grad + stash`` and the exact ``torch.optim.SGD`` update.

        A parameter missing one of the two gradients uses zero for it (SPEC §2 Decision)."""
        stashes = [self.state[p].pop("stash", None) for p in ps]
        g1 = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]
        g2 = None
        if any(s is not None for s in stashes):
            g2 = [s if s is not None else torch.zeros_like(p) for p, s in zip(ps, stashes)]
        if group["momentum"] == 0:
            self._run_sgd(i, group, ps, g1, g2, [], first=False)
            for p in ps:
                p.grad = None
            return
        state = self.base_optimizer.state
        has_buf = [state[p].get("momentum_buffer") is not None for p in ps]
        for first in (True, False):  # params without a buffer yet (first step) / with one
            idx = [k for k, h in enumerate(has_buf) if h != first]
            if not idx:
                continue
            sub = [ps[k] for k in idx]
            bufs = [torch.empty_like(p) if first else state[p]["momentum_buffer"] for p in sub]
            self._run_sgd(i, group, sub, [g1[k] for k in idx],
                          None if g2 is None else [g2[k] for k in idx], bufs, first)
            for p, b in zip(sub, bufs):
                state[p]["momentum_buffer"] = b
        for p in ps:  # updated here: the base optimizer must skip them
            p.grad = None

    def _run_sgd(self, i: int, group: dict[str, Any], ps: list[Tensor], g1: list[Tensor],
                 g2: list[Tensor] | None, bufs: list[Tensor], first: bool) -> None:
        self._ops(i).sgd_step(
            ps, g1, g2, bufs,
            lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
            weight_decay=group["weight_decay"], nesterov=group["nesterov"],
            maximize=group["maximize"], first_step=first,
        )

    # ----------------------------------------------------------------------------- passes
    def _forward(self, closure: Closure, per_sample: bool, where: str) -> tuple[Tensor, Tensor | None]:
        with torch.enable_grad():
            out = closure()
        losses, logits = _unpack(out, type(self).__name__, per_sample)
        if self.check_inputs and not self._amp:
            check_finite_loss(losses, where)
        return losses, logits

    def _backward(self, loss: Tensor, retain_graph: bool = False) -> None:
        scaler = self._scaler
        (scaler.scale(loss) if scaler is not None else loss).backward(retain_graph=retain_graph)

    def _begin(self, grad_scaler: torch.amp.GradScaler | None) -> float | Tensor:
        """Set up one closure-driven step; returns ``1 / loss scale`` (1.0 without AMP)."""
        self._scaler = grad_scaler if grad_scaler is not None and grad_scaler.is_enabled() else None
        self._amp = self._scaler is not None
        self.zero_grad()
        return 1.0 / self._scaler.get_scale() if self._amp else 1.0

    def _drop_stashes(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                self.state.get(p, {}).pop("stash", None)

    def _abort(self) -> None:
        """Undo a half-done step: weights back to w, stashes and gradients dropped."""
        self.restore()
        self._drop_stashes()
        self.zero_grad()

    def _sam_tail(self, second_pass: Callable[[], StepOutput], inv_scale: float | Tensor,
                  fallback: StepOutput) -> StepOutput:
        """Shared end of a step: perturb, ``second_pass()`` (forward + backward at w + eps),
        restore and update; any error in the second pass restores w before it propagates."""
        if not self.perturb(inv_scale, skip_nonfinite=self._amp):
            # AMP overflow in the gradient that defines eps: keep the non-finite grads so the
            # scaler sees them, skip the step, lower the scale.
            self.restore_and_update(self._scaler)
            return fallback
        try:
            out = second_pass()
        except BaseException:
            self._abort()
            raise
        self.restore_and_update(self._scaler)
        return out

    def _weighted_pass(self, closure: Closure, weights: Callable[[Tensor], Tensor]) -> StepOutput:
        """Forward at w + eps and backward of ``weights(losses)``."""
        losses, logits = self._forward(closure, self.per_sample, "at w + eps (second forward)")
        self._backward(weights(losses))
        return StepOutput(losses.detach().mean(), None if logits is None else logits.detach())

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Wrapper state plus the base optimizer's (momentum buffers etc.), for exact resume."""
        sd = super().state_dict()
        sd["base_optimizer"] = self.base_optimizer.state_dict()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`; the wrapper and base optimizer keep sharing param groups."""
        sd = dict(state_dict)
        if "base_optimizer" not in sd:
            raise KeyError(
                "state_dict has no 'base_optimizer' entry: it was not saved by a focalsam_fast "
                "optimizer (save with optimizer.state_dict())"
            )
        base = sd.pop("base_optimizer")
        super().load_state_dict(sd)
        self.base_optimizer.load_state_dict(base)
        self.base_optimizer.param_groups = self.param_groups
        self._group_impls = [self._resolve(g) for g in self.param_groups]
