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

Every implementation is called the same way, through the optimizer-side passes of
:class:`focalsam_fast.kernels.interface.KernelModule`: ``impl='reference'`` runs them as the
official code does (clone, per-tensor ops, base optimizer step); the other implementations run the
fused multi-tensor kernels of :mod:`focalsam_fast.kernels` (storage swap instead of clone, one
combined SGD pass).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.optim import Optimizer

from .. import kernels
from .._validation import check_hyper, check_nonneg, check_per_sample
from . import amp
from .amp import loss_scale
from .nonfinite import GRAD_EPS, GRAD_FINAL, GRAD_KEPT, LOSS_EPS, NonFiniteFlags

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
        impl: ``'auto'`` or one of :data:`focalsam_fast.kernels.IMPLS`.  Under ``'auto'`` a param
            group the fused kernels cannot take (see :func:`focalsam_fast.kernels.unsupported`)
            runs the device's fallback, named in :attr:`impl` and :attr:`impl_fallbacks`.
        check_inputs: validate label values and the finiteness of every loss and gradient of a
            step (one host read per step for the values, one for the labels); a non-finite value
            raises ``FloatingPointError`` with the weights untouched.  ``False`` makes a step with
            the default SGD and a fused impl free of host syncs (CUDA graphs), and non-finite
            values then propagate as in ``torch.optim.SGD``.  Under a ``GradScaler`` the scaler's
            own check skips non-finite steps on the device either way.
        **base_kwargs: passed to ``base_optimizer`` (e.g. ``lr``, ``momentum``, ``weight_decay``).

    Stage order is enforced: a call that would lose :math:`w` (perturbing twice, ``step()``
    while perturbed, stages out of order) raises and names the call expected next;
    :meth:`abort` drops a half-done stage sequence and puts :math:`w` back.
    """

    per_sample = True  # closures must return per-sample losses (reduction='none')
    stages: tuple[str, ...] = ()  # the stage API's calls, in order

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
        check_hyper(base_kwargs, "")
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, Optimizer)):
            raise TypeError(
                "base_optimizer must be an optimizer class such as torch.optim.SGD (the class, "
                f"not an instance), got {base_optimizer!r}"
            )
        if impl != "auto" and impl not in kernels.IMPLS:
            raise ValueError(f"unknown impl {impl!r}; valid: 'auto', " + ", ".join(kernels.IMPLS))
        self._impl_request = impl
        self._group_impls: list[str] = []
        self.impl_fallbacks: dict[int, str] = {}
        defaults = dict(rho=rho, adaptive=adaptive, **base_kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.check_inputs = check_inputs
        self._reset_transient()
        self._group_impls = [self._resolve(i, g) for i, g in enumerate(self.param_groups)]

    def _reset_transient(self) -> None:
        """Per-step and cached state that is rebuilt on demand (also after copy / unpickling)."""
        self._buffers: dict[Tensor, tuple[Tensor, Tensor]] = {}
        self._scaler: torch.amp.GradScaler | None = None
        self._amp = False
        self._loss_scale: Tensor | None = None
        self._flags = NonFiniteFlags()
        self._perturbed = False
        self._stage = 0

    # ----------------------------------------------------------------------------- dispatch
    def _resolve(self, index: int, group: dict[str, Any]) -> str:
        """The impl of one group: the request, or under 'auto' the device's fallback when the
        fused kernels cannot take the group's parameters (the reason is kept)."""
        params = list(group["params"])
        dev = params[0].device if params else torch.device("cpu")
        name = kernels.resolve(self._impl_request, dev)
        why = kernels.unsupported(name, params)
        if why is None:
            self.impl_fallbacks.pop(index, None)
            return name
        if self._impl_request != "auto":
            raise ValueError(
                f"impl={name!r} cannot run param group {index}: {why}. Use impl='auto' "
                "(falls back per group) or make the parameters dense."
            )
        fallback = kernels.FALLBACK.get(dev.type, kernels.UNIVERSAL)
        if kernels.unsupported(fallback, params) is not None:
            fallback = kernels.UNIVERSAL
        self.impl_fallbacks[index] = f"{fallback} ({why})"
        return fallback

    def _refresh_impls(self) -> None:
        if len(self._group_impls) != len(self.param_groups):  # groups added later
            self._group_impls = [self._resolve(i, g) for i, g in enumerate(self.param_groups)]

    @property
    def impl(self) -> str:
        """The implementation each param group runs (one name when all groups agree); why a group
        fell back is in :attr:`impl_fallbacks`."""
        self._refresh_impls()
        names = sorted(set(self._group_impls))
        return names[0] if len(names) == 1 else ",".join(self._group_impls)

    def _ops(self, index: int) -> ModuleType:
        """The implementation module of group ``index`` (see :class:`kernels.interface.KernelModule`)."""
        self._refresh_impls()
        params = self.param_groups[index]["params"]
        return kernels.get_ops(self._group_impls[index], params[0].device if params else torch.device("cpu"))

    def _grads_for(self, index: int, ps: list[Tensor], grads: list[Tensor] | None = None) -> list[Tensor]:
        """The gradients of ``ps`` (``.grad`` unless given); a sparse one moves the group to
        ``reference`` (or raises)."""
        grads = [p.grad for p in ps] if grads is None else grads
        name = self._group_impls[index]
        sparse = any(g.layout != torch.strided for g in grads)
        why = kernels.unsupported(name, grads, "gradient") if sparse else None
        if why is not None:
            if self._impl_request != "auto":
                raise ValueError(f"impl={name!r} cannot run param group {index}: {why}")
            self._group_impls[index] = kernels.UNIVERSAL
            self.impl_fallbacks[index] = f"{kernels.UNIVERSAL} ({why})"
        return grads

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapper and the base optimizer (they share the group dicts)."""
        index = len(self.param_groups)
        if "rho" in param_group:
            check_nonneg(f"rho of param group {index}", param_group["rho"])
        check_hyper(param_group, f" of param group {index}")
        super().add_param_group(param_group)
        if hasattr(self, "base_optimizer"):
            group = self.param_groups[-1]
            for key, value in self.base_optimizer.defaults.items():
                group.setdefault(key, value)
            self._group_impls = [self._resolve(i, g) for i, g in enumerate(self.param_groups)]

    # ----------------------------------------------------------------------------- order
    def _advance(self, name: str) -> None:
        """Enforce the stage API's order; called by each stage before it acts."""
        expected = self.stages[self._stage]
        if name != expected:
            raise RuntimeError(
                f"{type(self).__name__}.{name}() called out of order: the next call must be "
                f"{expected}() (order: {' -> '.join(self.stages)}). Nothing was changed"
                + ("; the weights are still at w + eps" if self._perturbed else "")
                + f". Call {type(self).__name__}.abort() to drop the half-done step."
            )
        self._stage = (self._stage + 1) % len(self.stages)

    def _run_stage(self, name: str, action: Callable[[], None]) -> None:
        self._advance(name)
        try:
            action()
        except BaseException:
            self.abort()
            raise

    def _expect_idle(self) -> None:
        if self._stage or self._perturbed:
            expected = self.stages[self._stage] if self._stage else "restore_and_update"
            raise RuntimeError(
                f"{type(self).__name__}.step() called in the middle of a stage-by-stage step: "
                f"the next call must be {expected}(), or abort() to put w back and drop it"
            )

    @torch.no_grad()
    def abort(self) -> None:
        """Drop a half-done step: weights back to :math:`w`, kept gradients and ``.grad`` cleared."""
        self.restore()
        self._drop_stashes()
        self.zero_grad()
        self._flags.clear()
        self._stage = 0

    # ----------------------------------------------------------------------------- stages
    def _grad_params(self, group: dict[str, Any]) -> list[Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    @property
    def _checking(self) -> bool:
        """Value checks on the host read of the step (AMP relies on the scaler's own check)."""
        return self.check_inputs and not self._amp

    @torch.no_grad()
    def stash_grads(self, grads: dict[Tensor, Tensor] | None = None) -> None:
        """Keep the current gradient of every parameter (or the given ``{param: grad}``) as
        ``g2`` and clear ``.grad``.

        What is kept is the implementation's ``keep_grads``: a clone on ``reference`` (as the
        official code), the tensor itself on the fused paths (zero bytes copied; the next backward
        allocates a fresh ``.grad``).
        """
        for i, group in enumerate(self.param_groups):
            if grads is None:
                ps = self._grad_params(group)
                gs = self._grads_for(i, ps) if ps else []
            else:
                ps = [p for p in group["params"] if p in grads]
                gs = self._grads_for(i, ps, [grads[p] for p in ps]) if ps else []
            if not ps:
                continue
            if self._checking:
                self._flags.note(GRAD_KEPT, self._ops(i).sq_norm(gs))
            for p, g in zip(ps, self._ops(i).keep_grads(gs)):
                self.state[p]["stash"] = g
                p.grad = None

    def _keep_gradient(self, objective: Tensor) -> None:
        """``g2 = grad(objective)`` kept for the update, taken with ``torch.autograd.grad`` (the
        graph is retained): no ``.grad`` is written, so no DistributedDataParallel hook runs and
        g2 costs no all-reduce of its own (see :meth:`_before_last_backward`)."""
        scaled = self._scaler.scale(objective) if self._scaler is not None else objective
        params = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        grads = torch.autograd.grad(scaled, params, retain_graph=True, allow_unused=True)
        self.stash_grads({p: g for p, g in zip(params, grads) if g is not None})

    def _keep_gradient_of(self, outputs: Tensor, grad_outputs: Tensor) -> None:
        """As :meth:`_keep_gradient` for a given output cotangent (the fused loss path)."""
        params = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        grads = torch.autograd.grad(outputs, params, grad_outputs, retain_graph=True, allow_unused=True)
        self.stash_grads({p: g for p, g in zip(params, grads) if g is not None})

    @staticmethod
    def distributed() -> bool:
        """True in a torch.distributed process group of more than one process."""
        dist = torch.distributed
        return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    @torch.no_grad()
    def _before_last_backward(self) -> None:
        """Under torch.distributed, put ``g2`` back into ``.grad`` before the last backward:
        autograd then accumulates ``g2 + g1`` and DistributedDataParallel all-reduces the sum once
        (all-reduce is linear), so a step needs one all-reduce for eps and one for the update.
        On one process ``g2`` stays kept and the fused SGD pass reads it directly."""
        if not self.distributed():
            return
        for group in self.param_groups:
            for p in group["params"]:
                stash = self.state.get(p, {}).pop("stash", None)
                if stash is not None:
                    p.grad = stash

    def grad_norm(self) -> Tensor:
        r"""One global norm :math:`\lVert a \odot g\rVert_2` over all groups (fp32/fp64 on device)."""
        sq: list[Tensor] = []
        for i, group in enumerate(self.param_groups):
            ps = self._grad_params(group)
            if ps:
                grads = self._grads_for(i, ps)
                sq.append(self._ops(i).sq_norm(grads, ps if group["adaptive"] else None))
        if not sq:
            raise RuntimeError("no parameter has a gradient: did the closure's loss use the model?")
        dev = sq[0].device
        return (
            torch.stack([s.to(dev, torch.float64 if s.dtype == torch.float64 else torch.float32) for s in sq])
            .sum()
            .sqrt()
        )

    @torch.no_grad()
    def perturb(self, inv_scale: float | Tensor = 1.0) -> None:
        r"""Save :math:`w` and move to :math:`w + \epsilon` (then clear ``.grad``).

        ``inv_scale`` is 1 / the GradScaler scale under AMP (``eps`` is then independent of the
        scale).  A non-finite norm gives :math:`\epsilon = 0` (and is recorded: the step is then
        refused by the check or skipped by the scaler).  Refuses to perturb twice.
        """
        if self._perturbed:
            raise RuntimeError(
                f"{type(self).__name__}.perturb(): the weights are already at w + eps; restore them "
                "first (restore_and_update(), or abort() to drop the step)"
            )
        norm = self.grad_norm()
        guarded = self._checking or self._amp
        if guarded:
            self._flags.note(GRAD_EPS, norm)
        # asked only by passes that keep w on the host (reference): one read per step, and only
        # where a non-finite step is caught (checks or AMP); unguarded they run as the official code
        finite = functools.cache(lambda: not guarded or bool(torch.isfinite(norm)))
        for i, group in enumerate(self.param_groups):
            ps = self._grad_params(group)
            if not ps:
                continue
            saved = self._ops(i).perturb_params(
                ps,
                [p.grad for p in ps],
                norm,
                group["rho"],
                group["adaptive"],
                inv_scale,
                self._buffers,
                finite,
            )
            for p, w in zip(ps, saved):
                self.state[p]["saved"] = w
                p.grad = None
        self._perturbed = True

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the exact saved weights of every perturbed parameter (also those that got no
        gradient in the pass at :math:`w + \\epsilon`)."""
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "saved" in st:
                    p.data = st.pop("saved")
        self._perturbed = False

    def _fused_sgd(self, i: int, group: dict[str, Any]) -> bool:
        return self._ops(i).fuses_update(self.base_optimizer, group)

    @property
    def _official_passes(self) -> bool:
        """Whether some param group runs the official per-tensor passes (the implementation's
        ``OFFICIAL``, i.e. ``reference``)."""
        return any(self._ops(i).OFFICIAL for i in range(len(self.param_groups)))

    def _update_params(self, group: dict[str, Any]) -> list[Tensor]:
        return [p for p in group["params"] if p.grad is not None or "stash" in self.state.get(p, {})]

    @torch.no_grad()
    def restore_and_update(self, grad_scaler: torch.amp.GradScaler | None = None) -> None:
        r"""Restore :math:`w`, set :math:`g = g_{now} + g2`, apply the base optimizer, zero grads.

        With ``check_inputs`` the step's one host read comes here: any non-finite value met in
        the step raises ``FloatingPointError`` with :math:`w`, momentum and state as before.
        With a ``grad_scaler`` the combined gradient is unscaled and checked by the scaler's own
        op and the update is skipped on the device when it is non-finite (no host read with the
        default SGD); the scaler is then updated once.
        """
        self.restore()
        if grad_scaler is not None and grad_scaler.is_enabled():
            self._amp_update(grad_scaler)
        else:
            if self._checking:
                for i, group in enumerate(self.param_groups):
                    ps = self._grad_params(group)
                    if ps:
                        self._flags.note(GRAD_FINAL, self._ops(i).sq_norm(self._grads_for(i, ps)))
                try:
                    self._flags.raise_if_any(type(self).__name__)
                except FloatingPointError:
                    self.abort()
                    raise
            fused = [self._fused_sgd(i, g) for i, g in enumerate(self.param_groups)]
            for i, group in enumerate(self.param_groups):
                ps = self._update_params(group)
                if not ps:
                    continue
                if fused[i]:
                    self._sgd_group(i, group, ps, None)
                else:
                    self._combine(i, ps)
            if not all(fused):
                self.base_optimizer.step()
        self._flags.clear()
        self._drop_stashes()
        self.zero_grad()

    def _amp_update(self, scaler: torch.amp.GradScaler) -> None:
        """Combine, unscale and check as ``GradScaler.step``, then update on the device."""
        for i, group in enumerate(self.param_groups):
            ps = self._update_params(group)
            if ps:
                self._combine(i, ps)
        loss_scale(scaler, self._first_device())
        found = amp.unscale(scaler, self.base_optimizer, self._flags.any(GRAD_EPS))
        fused = [self._fused_sgd(i, g) for i, g in enumerate(self.param_groups)]
        for i, group in enumerate(self.param_groups):
            ps = self._grad_params(group)
            if ps and fused[i]:
                self._sgd_group(i, group, ps, found)
        if not all(fused) and not bool(found):  # the base optimizer's own step: one host read
            self.base_optimizer.step()
        amp.update(scaler, self.base_optimizer, found)

    def _first_device(self) -> torch.device:
        for group in self.param_groups:
            if group["params"]:
                return group["params"][0].device
        return torch.device("cpu")

    def _combine(self, i: int, ps: list[Tensor]) -> None:
        """``grad <- grad + stash`` for the base optimizer's own step, by the implementation's
        ``add_grads`` (one multi-tensor add on the fused paths, the official per-tensor add on
        ``reference``); a parameter with only one of the two gradients keeps that one."""
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
        self._ops(i).add_grads(*both)

    def _sgd_group(self, i: int, group: dict[str, Any], ps: list[Tensor], found_inf: Tensor | None) -> None:
        """One fused pass: ``g = grad + stash`` and the exact ``torch.optim.SGD`` update, skipped
        on the device when ``found_inf`` is non-zero.

        A parameter missing one of the two gradients uses zero for it (docs/spec.md §2 Decision).  A
        first momentum step that may be skipped starts from a zero buffer as a later step
        (bit-identical to ``buf = g`` when ``dampening == 0``); with dampening it reads
        ``found_inf`` on the host once."""
        stashes = [self.state[p].pop("stash", None) for p in ps]
        g1 = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]
        g2 = None
        if any(s is not None for s in stashes):
            g2 = [s if s is not None else torch.zeros_like(p) for p, s in zip(ps, stashes)]
        state = self.base_optimizer.state
        groups: list[tuple[list[int], bool]] = [(list(range(len(ps))), False)]
        if group["momentum"] != 0:
            has_buf = [state[p].get("momentum_buffer") is not None for p in ps]
            fresh = [k for k, h in enumerate(has_buf) if not h]
            skip_fresh = bool(fresh) and found_inf is not None and group["dampening"] != 0 and bool(found_inf)
            groups = [([k for k, h in enumerate(has_buf) if h], False)]
            if fresh and not skip_fresh:
                groups.append((fresh, found_inf is None or group["dampening"] != 0))
        for idx, first in groups:
            if not idx:
                continue
            sub = [ps[k] for k in idx]
            bufs: list[Tensor] = []
            if group["momentum"] != 0:
                bufs = [state[p].get("momentum_buffer") for p in sub]
                bufs = [
                    b if b is not None else (torch.empty_like(p) if first else torch.zeros_like(p))
                    for p, b in zip(sub, bufs)
                ]
            self._ops(i).sgd_step(
                sub,
                [g1[k] for k in idx],
                None if g2 is None else [g2[k] for k in idx],
                bufs,
                lr=group["lr"],
                momentum=group["momentum"],
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                first_step=first,
                found_inf=found_inf,
            )
            for p, b in zip(sub, bufs):
                state[p]["momentum_buffer"] = b
        for p in ps:  # updated here: the base optimizer must skip them
            p.grad = None

    # ----------------------------------------------------------------------------- passes
    def _forward(self, closure: Closure, per_sample: bool, slot: int) -> tuple[Tensor, Tensor | None]:
        with torch.enable_grad():
            out = closure()
        losses, logits = _unpack(out, type(self).__name__, per_sample)
        if self._checking:
            self._flags.note(slot, losses)
        return losses, logits

    def _backward(self, loss: Tensor, retain_graph: bool = False) -> None:
        scaler = self._scaler
        (scaler.scale(loss) if scaler is not None else loss).backward(retain_graph=retain_graph)

    def _begin(self, grad_scaler: torch.amp.GradScaler | None) -> float | Tensor:
        """Set up one closure-driven step; returns ``1 / loss scale`` (1.0 without AMP), kept on
        the device under AMP."""
        self._expect_idle()
        self._scaler = grad_scaler if grad_scaler is not None and grad_scaler.is_enabled() else None
        self._amp = self._scaler is not None
        self._flags.clear()
        self.zero_grad()
        if not self._amp:
            self._loss_scale = None
            return 1.0
        self._loss_scale = loss_scale(self._scaler, self._first_device())
        return amp.inverse(self._loss_scale)

    def _guarded(self, body: Callable[[], StepOutput]) -> StepOutput:
        """Run one closure-driven step; any exception puts :math:`w` back and drops the step."""
        try:
            return body()
        except BaseException:
            self.abort()
            raise
        finally:
            self._scaler, self._amp, self._loss_scale = None, False, None

    def _drop_stashes(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                self.state.get(p, {}).pop("stash", None)

    def _sam_tail(self, second_pass: Callable[[], StepOutput], inv_scale: float | Tensor) -> StepOutput:
        """Shared end of a step: perturb, ``second_pass()`` (forward + backward at w + eps),
        restore and update."""
        self.perturb(inv_scale)
        out = second_pass()
        self.restore_and_update(self._scaler)
        return out

    def _weighted_pass(self, closure: Closure, weights: Callable[[Tensor], Tensor]) -> StepOutput:
        """Forward at w + eps and backward of ``weights(losses)``."""
        losses, logits = self._forward(closure, self.per_sample, LOSS_EPS)
        self._backward(weights(losses))
        return StepOutput(losses.detach().mean(), None if logits is None else logits.detach())

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Wrapper state plus the base optimizer's (momentum buffers etc.), for exact resume."""
        sd = super().state_dict()
        sd["base_optimizer"] = self.base_optimizer.state_dict()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`; the wrapper and base optimizer keep sharing param groups.
        Hyper-parameters are validated before anything is changed."""
        sd = dict(state_dict)
        if "base_optimizer" not in sd:
            raise KeyError(
                "state_dict has no 'base_optimizer' entry: it was not saved by a focalsam_fast "
                "optimizer (save with optimizer.state_dict())"
            )
        for i, group in enumerate(sd.get("param_groups", [])):
            if "rho" in group:
                check_nonneg(f"rho of param group {i} in the state_dict", group["rho"])
            check_hyper(group, f" of param group {i} in the state_dict")
        base = sd.pop("base_optimizer")
        self.abort()
        super().load_state_dict(sd)
        self.base_optimizer.load_state_dict(base)
        self.base_optimizer.param_groups = self.param_groups
        self._group_impls = [self._resolve(i, g) for i, g in enumerate(self.param_groups)]

    def __getstate__(self) -> dict[str, Any]:
        """The whole optimizer for ``copy.deepcopy`` / ``pickle`` (torch's default keeps only
        defaults, state and groups); caches and per-step state are rebuilt."""
        if self._stage or self._perturbed:
            raise RuntimeError(
                f"cannot copy or pickle {type(self).__name__} in the middle of a "
                "stage-by-stage step: finish it or call abort() first"
            )
        state = self.__dict__.copy()
        for key in ("_buffers", "_scaler", "_amp", "_loss_scale", "_flags", "_perturbed", "_stage"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._reset_transient()
