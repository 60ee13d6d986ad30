"""Reference implementation of the SAM-family multi-tensor passes: the executable spec.

Every other implementation (``foreach``, ``cpp``, ``cuda``, ``triton``) provides the same interface
(:class:`~focalsam_fast.kernels.interface.KernelModule`) with the same semantics and is tested
against this module.  The loops below follow the official Focal-SAM / SAM code (one small op per
tensor), so they also serve as the baseline that the benchmarks time; the optimizer-side passes at
the end are the official code's own (clones, per-tensor adds, the base optimizer's step).

Conventions shared by all implementations:

* ``sq_norm`` returns a 0-dim tensor in the accumulation dtype (float32 for 16/32-bit inputs,
  float64 for float64 inputs) on the device of the first tensor.
* ``perturb`` never modifies ``params``; it writes ``w + eps`` into ``out`` so the caller can swap
  storages (restore is then a bit-exact swap back).
* ``scale = rho / (norm * inv_scale + 1e-12) * inv_scale`` is computed in the accumulation dtype
  and ``out = p + (p * p) * (g * scale)`` (adaptive; else ``p + g * scale``) in it, each operation
  rounded in turn, then once to the parameters' dtype: the one order of every implementation
  (docs/spec.md §3).  ``inv_scale`` is 1 / GradScaler scale (1.0 without AMP), so ``eps`` does
  not depend on the loss scale.  A non-finite ``norm`` gives ``eps = 0`` (``out = params``
  exactly), so an overflowed gradient never moves the weights before the step is skipped.
* ``sgd_step`` takes an optional device flag ``found_inf`` (one float32 element): when it is
  non-zero nothing is written, as in ATen's fused optimizers.  The native and Triton kernels read
  it on the device (no host sync); this reference reads it on the host.
* ``focal_loss`` never reads outside its tables: a label outside ``[0, C)`` gives a NaN loss and
  NaN gradient rows for that sample only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

NORM_EPS = 1e-12


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype for a parameter/gradient dtype: float64 stays, everything else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def sq_norm(grads: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
    r"""Sum of squares :math:`\sum_t \lVert a_t \odot g_t \rVert_2^2` over all tensors.

    ``a_t = |p_t|`` when ``params`` is given (adaptive SAM), else 1.
    """
    if not grads:
        raise ValueError("sq_norm needs at least one gradient tensor")
    dt = acc_dtype(grads[0].dtype)
    total = torch.zeros((), dtype=dt, device=grads[0].device)
    for i, g in enumerate(grads):
        v = g.to(dt)
        if params is not None:
            v = params[i].to(dt).abs() * v
        total = total + v.pow(2).sum()
    return total


def perturb(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    out: Sequence[Tensor],
    norm: Tensor,
    rho: float | Tensor,
    adaptive: bool = False,
    inv_scale: float | Tensor = 1.0,
) -> None:
    r"""``out_t = p_t + (p_t^2 if adaptive) * (g_t * s)`` with
    :math:`s = \rho / (\lVert h \rVert \iota + 10^{-12})\, \iota`, :math:`\iota` = ``inv_scale``, in the
    accumulation dtype and rounded once to ``out``'s dtype; ``out_t = p_t`` when the norm is not
    finite.  This rounding order is the one of every implementation (``csrc/common/formulas.h``)."""
    if not params:
        return
    n = torch.as_tensor(norm, dtype=acc_dtype(params[0].dtype), device=params[0].device)
    if not bool(torch.isfinite(n)):
        for p, o in zip(params, out):
            o.copy_(p)
        return
    _write_perturbed(params, grads, out, n, rho, adaptive, inv_scale)


def _write_perturbed(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    out: Sequence[Tensor],
    norm: Tensor,
    rho: float | Tensor,
    adaptive: bool,
    inv_scale: float | Tensor,
) -> None:
    """The per-element pass of :func:`perturb` (``out`` may be ``params``: per tensor, read then write)."""
    dt = acc_dtype(params[0].dtype)
    dev = params[0].device
    inv = torch.as_tensor(inv_scale, dtype=dt, device=dev)
    scale = torch.as_tensor(rho, dtype=dt, device=dev) / (norm.to(dt) * inv + NORM_EPS) * inv
    for p, g, o in zip(params, grads, out):
        e = g.to(dt) * scale
        if adaptive:
            e = p.to(dt).pow(2) * e
        torch.add(p, e, out=o)  # in the accumulation dtype, rounded once to o's


def sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    grads2: Sequence[Tensor] | None,
    momentum_buffers: Sequence[Tensor],
    *,
    lr: float | Tensor,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    found_inf: Tensor | None = None,
) -> None:
    r"""Combine the gradients and apply one ``torch.optim.SGD`` update in place.

    .. math::
        g &= g^{(1)} + g^{(2)} \quad(\text{or } g^{(1)} \text{ when } g^{(2)} \text{ is None}),
           \; g \leftarrow -g \text{ if maximize} \\
        g &\leftarrow g + \text{wd}\, p \\
        b &\leftarrow g \text{ (first step) else } \mu b + (1-\tau) g \\
        g &\leftarrow g + \mu b \text{ (nesterov) else } b \quad(\text{only if } \mu \ne 0) \\
        p &\leftarrow p - \eta g

    ``momentum_buffers`` is ignored when ``momentum == 0``; with ``first_step`` the buffers are
    overwritten (their old content may be uninitialised memory).  ``grads`` is not modified.
    A non-zero ``found_inf`` (one-element tensor) skips the whole update.
    """
    if found_inf is not None and bool(found_inf.reshape(()) != 0):
        return
    for i, p in enumerate(params):
        g = grads[i] if grads2 is None else grads[i] + grads2[i]
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        if momentum != 0:
            buf = momentum_buffers[i]
            if first_step:
                buf.copy_(g)
            else:
                buf.mul_(momentum).add_(g, alpha=1 - dampening)
            g = g.add(buf, alpha=momentum) if nesterov else buf
        if isinstance(lr, Tensor):
            p.sub_(g * lr)
        else:
            p.add_(g, alpha=-lr)


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    coeff: Tensor,
    scale: Tensor,
    bias: Tensor,
    margin: Tensor,
    weight: Tensor | None = None,
    grad_scale: float | Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Per-sample losses and the two weighted logit gradients of docs/spec.md §2, in one pass.

    With per-class tables ``scale`` (a), ``bias`` (b), ``margin`` (m) and optional ``weight`` (w):

    .. math::
        z'_{ij} &= a_j z_{ij} + b_j - m_j [j = y_i] \\
        l_i &= w_{y_i} \big(\operatorname{logsumexp}_j z'_{ij} - z'_{i y_i}\big) \\
        \partial l_i / \partial z_{ij} &= w_{y_i} a_j (\operatorname{softmax}(z'_i)_j - [j = y_i])

    CE: a = 1, b = 0, m = 0.  LA: b = tau log(pi + 1e-9).  VS: a = 1/Delta, b = iota.
    LDAM: a = s, m = s * margin.  Returns ``(losses [B], grad_a [B, C], grad_b [B, C])`` where
    ``grad_a = (1 - c_y)/B * dl/dz`` and ``grad_b = c_y/B * dl/dz`` are the gradients of
    :math:`A = \frac1B\sum_i (1-c_{y_i}) l_i` and :math:`B_w = \frac1B\sum_i c_{y_i} l_i`.
    Both gradients are multiplied by ``grad_scale`` (the AMP loss scale; a float or a one-element
    tensor) in the accumulation dtype, before rounding to the logits' dtype.  A label outside
    ``[0, C)`` gives a NaN loss and NaN gradient rows for its sample.
    """
    dt = acc_dtype(logits.dtype)
    z = logits.to(dt)
    n, c = z.shape
    valid = (targets >= 0) & (targets < c)
    y = torch.where(valid, targets, 0).long()
    onehot = torch.zeros((n, c), dtype=dt, device=z.device)
    onehot.scatter_(1, y[:, None], 1.0)
    adj = z * scale.to(dt) + bias.to(dt) - margin.to(dt) * onehot
    lse = torch.logsumexp(adj, dim=1)
    losses = lse - adj.gather(1, y[:, None]).squeeze(1)
    cot = torch.softmax(adj, dim=1) - onehot
    if weight is not None:
        w = weight.to(dt)[y]
        losses = losses * w
        cot = cot * w[:, None]
    cot = cot * scale.to(dt)
    cy = coeff.to(dt)[y]
    grad_a = cot * ((1 - cy) / n)[:, None]
    grad_b = cot * (cy / n)[:, None]
    if grad_scale is not None:
        gs = torch.as_tensor(grad_scale, dtype=dt, device=z.device)
        grad_a, grad_b = grad_a * gs, grad_b * gs
    nan = torch.tensor(float("nan"), dtype=dt, device=z.device)
    losses = torch.where(valid, losses, nan)
    grad_a = torch.where(valid[:, None], grad_a, nan)
    grad_b = torch.where(valid[:, None], grad_b, nan)
    out = logits.dtype
    return losses.to(out), grad_a.to(out), grad_b.to(out)


def is_available(device: torch.device) -> tuple[bool, str]:
    """Always available: plain PyTorch ops on any device."""
    return True, ""


# ----------------------------------------------------------------------------- optimizer side
OFFICIAL = True


def keep_grads(grads: Sequence[Tensor]) -> list[Tensor]:
    """Clones, as the official code keeps ``g2``."""
    return [g.clone() for g in grads]


def perturb_params(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    norm: Tensor,
    rho: float | Tensor,
    adaptive: bool,
    inv_scale: float | Tensor,
    spares: dict[Tensor, tuple[Tensor, Tensor]],
    norm_finite: Callable[[], bool],
) -> list[Tensor]:
    """The official perturbation: a clone of :math:`w`, then :math:`w + \\epsilon` written into ``p``
    per tensor (the formula of :func:`perturb`; ``spares`` is not used).  ``p`` stays at :math:`w`
    when ``norm_finite()`` is False, which reads the norm on the host once per step, and only in a
    step that guards against non-finite values (checks or AMP)."""
    saved = [p.detach().clone() for p in params]
    if params and norm_finite():
        _write_perturbed(params, grads, params, norm, rho, adaptive, inv_scale)
    return saved


def add_grads(grads: Sequence[Tensor], grads2: Sequence[Tensor]) -> None:
    """``g.add_(g2)`` per tensor, as the official code."""
    for g, g2 in zip(grads, grads2):
        g.add_(g2)


def fuses_update(base_optimizer: Optimizer, group: dict[str, Any]) -> bool:
    """Never: the official code steps with the base optimizer itself."""
    return False
