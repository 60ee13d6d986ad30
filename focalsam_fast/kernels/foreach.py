"""``torch._foreach`` implementation of the multi-tensor passes (same semantics as ``reference``).

A handful of horizontally fused ATen launches per pass instead of one op per tensor; used on GPUs
when neither the CUDA C++ nor the Triton kernels are available.  Like ``reference`` it reads the
non-finite-norm rule of ``perturb`` and ``found_inf`` of ``sgd_step`` on the host (one sync each);
the native and Triton kernels read them on the device.  The loss is the reference's
``focal_loss`` (already a handful of whole-batch ATen ops).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._fused import OFFICIAL, add_grads, fuses_update, keep_grads, storage_swap
from .reference import NORM_EPS, acc_dtype, focal_loss

__all__ = [
    "OFFICIAL",
    "add_grads",
    "focal_loss",
    "fuses_update",
    "is_available",
    "keep_grads",
    "perturb",
    "perturb_params",
    "sgd_step",
    "sq_norm",
]


def is_available(device: torch.device) -> tuple[bool, str]:
    """Always available: it only uses ATen's ``_foreach`` ops."""
    return True, ""


def sq_norm(grads: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
    r""":math:`\sum_t \lVert a_t \odot g_t \rVert^2`, see :func:`reference.sq_norm`."""
    if not grads:
        raise ValueError("sq_norm needs at least one gradient tensor")
    dt = acc_dtype(grads[0].dtype)
    vals = (
        list(grads) if params is None else torch._foreach_mul(torch._foreach_abs(list(params)), list(grads))
    )
    norms = torch._foreach_norm(vals, 2, dtype=dt)
    return torch.stack(norms).pow(2).sum()


def perturb(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    out: Sequence[Tensor],
    norm: Tensor,
    rho: float | Tensor,
    adaptive: bool = False,
    inv_scale: float | Tensor = 1.0,
) -> None:
    """``out = p + (p * p) * (g * s)``, see :func:`reference.perturb` (same rounding order: in the
    accumulation dtype, rounded once to ``out``'s dtype)."""
    if not params:
        return
    dt = acc_dtype(params[0].dtype)
    dev = params[0].device
    n = torch.as_tensor(norm, dtype=dt, device=dev)
    if not bool(torch.isfinite(n)):
        torch._foreach_copy_(list(out), list(params))
        return
    inv = torch.as_tensor(inv_scale, dtype=dt, device=dev)
    scale = torch.as_tensor(rho, dtype=dt, device=dev) / (n * inv + NORM_EPS) * inv
    p_acc = list(params) if params[0].dtype == dt else [p.to(dt) for p in params]
    e = torch._foreach_mul(list(grads) if grads[0].dtype == dt else [g.to(dt) for g in grads], scale)
    if adaptive:
        torch._foreach_mul_(e, torch._foreach_mul(p_acc, p_acc))
    torch._foreach_add_(e, p_acc)
    torch._foreach_copy_(list(out), e)


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
    """Combine + ``torch.optim.SGD`` update, see :func:`reference.sgd_step`."""
    if not params or (found_inf is not None and bool(found_inf.reshape(()) != 0)):
        return
    p_list = list(params)
    g = list(grads) if grads2 is None else torch._foreach_add(list(grads), list(grads2))
    if maximize:
        g = torch._foreach_neg(g)
    if weight_decay != 0:
        g = torch._foreach_add(g, p_list, alpha=weight_decay)
    if momentum != 0:
        bufs = list(momentum_buffers)
        if first_step:
            torch._foreach_copy_(bufs, g)
        else:
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, g, alpha=1 - dampening)
        g = torch._foreach_add(g, bufs, alpha=momentum) if nesterov else bufs
    if isinstance(lr, Tensor):
        torch._foreach_sub_(p_list, torch._foreach_mul(g, lr))
    else:
        torch._foreach_add_(p_list, g, alpha=-lr)


perturb_params = storage_swap(perturb)
