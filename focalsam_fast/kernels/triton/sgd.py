r"""Multi-tensor gradient combination + exact ``torch.optim.SGD`` update: ``sgd_step``.

One pass per chunk reads :math:`p, g^{(1)}, g^{(2)}, b` and writes :math:`b, p`:

.. math::
    g &= g^{(1)} + g^{(2)}, \; g \leftarrow -g \text{ if maximize}, \; g \leftarrow g + \text{wd}\,p \\
    b &\leftarrow g \text{ (first step) else } \mu b + (1-\tau) g \\
    g &\leftarrow g + \mu b \text{ (nesterov) else } b \quad(\text{only if } \mu \ne 0) \\
    p &\leftarrow p - \eta g

in the operation order of :func:`reference.sgd_step` (``csrc/common/formulas.h``): every
``add(..., alpha=a)`` of the reference is one fused multiply-add ``tl.fma`` as ATen's vectorised
``add`` computes it, every other operation rounds on its own (the launches disable Triton's
multiply-add contraction, ``enable_fp_fusion=False``), and ``g1 + g2`` is rounded to the gradients'
dtype.  fp16/bf16 tensors are updated in fp32 and rounded once on store, as ATen's fused SGD does.
(Triton's CPU interpreter evaluates ``tl.fma`` with two roundings: numpy has no fused multiply-add.)
``lr``, ``wd``, ``mu`` and ``1 - tau`` are device scalars in the accumulation dtype, so a tensor
``lr`` (schedules, CUDA graphs) needs no host sync.

``found_inf`` (GradScaler's overflow flag, a one-element float32 device tensor) is read by every
program; when it is non-zero the program writes nothing, so a skipped AMP step leaves ``p`` and
``b`` bitwise unchanged without a host sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..reference import acc_dtype
from .guard import device_guard
from .multi_tensor import device_scalar, plan, tl_dtype


@triton.jit
def _sgd_chunk(
    p_ptr,
    g_ptr,
    g2_ptr,
    b_ptr,
    offs,
    count,
    lr,
    wd,
    mom,
    damp1,
    ACC: tl.constexpr,
    HAS_G2: tl.constexpr,
    HAS_WD: tl.constexpr,
    HAS_MOM: tl.constexpr,
    FIRST: tl.constexpr,
    NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    LR_TENSOR: tl.constexpr,
    MASKED: tl.constexpr,
):
    mask = (offs < count) if MASKED else None
    other = 0.0 if MASKED else None
    p = tl.load(p_ptr + offs, mask=mask, other=other).to(ACC)
    g = tl.load(g_ptr + offs, mask=mask, other=other).to(ACC)
    if HAS_G2:
        g = (g + tl.load(g2_ptr + offs, mask=mask, other=other).to(ACC)).to(g_ptr.dtype.element_ty).to(ACC)
    if MAXIMIZE:
        g = -g
    if HAS_WD:
        g = tl.fma(wd, p, g)
    if HAS_MOM:
        if FIRST:
            b = g
        else:
            b = tl.fma(damp1, g, tl.load(b_ptr + offs, mask=mask, other=other).to(ACC) * mom)
        b = b.to(b_ptr.dtype.element_ty)
        tl.store(b_ptr + offs, b, mask=mask)
        if NESTEROV:
            g = tl.fma(mom, b.to(ACC), g)
        else:
            g = b.to(ACC)
    if LR_TENSOR:  # reference: p.sub_(g * lr)
        p = p - g * lr
    else:  # reference: p.add_(g, alpha=-lr)
        p = tl.fma(-lr, g, p)
    tl.store(p_ptr + offs, p.to(p_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _sgd_kernel(
    layout,
    addrs,
    n_tensors,
    lr_ptr,
    wd_ptr,
    mom_ptr,
    damp1_ptr,
    found_inf,
    HAS_FOUND_INF: tl.constexpr,
    P_DT: tl.constexpr,
    G_DT: tl.constexpr,
    G2_DT: tl.constexpr,
    B_DT: tl.constexpr,
    ACC: tl.constexpr,
    HAS_G2: tl.constexpr,
    HAS_WD: tl.constexpr,
    HAS_MOM: tl.constexpr,
    FIRST: tl.constexpr,
    NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    LR_TENSOR: tl.constexpr,
    B_LIST: tl.constexpr,
    ALIGN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """SGD on chunk ``program_id``; lists: 0 params, 1 grads, [2 grads2], [B_LIST momentum buffers].
    Nothing is written when ``HAS_FOUND_INF`` and ``found_inf[0] != 0``."""
    run = True
    if HAS_FOUND_INF:
        run = tl.load(found_inf) == 0
    if run:
        _sgd_program(
            layout,
            addrs,
            n_tensors,
            lr_ptr,
            wd_ptr,
            mom_ptr,
            damp1_ptr,
            P_DT,
            G_DT,
            G2_DT,
            B_DT,
            ACC,
            HAS_G2,
            HAS_WD,
            HAS_MOM,
            FIRST,
            NESTEROV,
            MAXIMIZE,
            LR_TENSOR,
            B_LIST,
            ALIGN,
            BLOCK,
        )


@triton.jit
def _sgd_program(
    layout,
    addrs,
    n_tensors,
    lr_ptr,
    wd_ptr,
    mom_ptr,
    damp1_ptr,
    P_DT: tl.constexpr,
    G_DT: tl.constexpr,
    G2_DT: tl.constexpr,
    B_DT: tl.constexpr,
    ACC: tl.constexpr,
    HAS_G2: tl.constexpr,
    HAS_WD: tl.constexpr,
    HAS_MOM: tl.constexpr,
    FIRST: tl.constexpr,
    NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    LR_TENSOR: tl.constexpr,
    B_LIST: tl.constexpr,
    ALIGN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    t = tl.load(layout + pid * 3)
    start = tl.load(layout + pid * 3 + 1)
    count = tl.load(layout + pid * 3 + 2)
    p_ptr = tl.multiple_of(tl.load(addrs + t).to(tl.pointer_type(P_DT)) + start, ALIGN)
    g_ptr = tl.multiple_of(tl.load(addrs + n_tensors + t).to(tl.pointer_type(G_DT)) + start, ALIGN)
    g2_ptr = g_ptr
    if HAS_G2:
        g2_ptr = tl.multiple_of(tl.load(addrs + 2 * n_tensors + t).to(tl.pointer_type(G2_DT)) + start, ALIGN)
    b_ptr = p_ptr
    if HAS_MOM:
        b_addr = tl.load(addrs + B_LIST * n_tensors + t)
        b_ptr = tl.multiple_of(b_addr.to(tl.pointer_type(B_DT)) + start, ALIGN)
    lr = tl.load(lr_ptr)
    wd = tl.load(wd_ptr)
    mom = tl.load(mom_ptr)
    damp1 = tl.load(damp1_ptr)
    offs = tl.arange(0, BLOCK)
    if count == BLOCK:
        _sgd_chunk(
            p_ptr,
            g_ptr,
            g2_ptr,
            b_ptr,
            offs,
            count,
            lr,
            wd,
            mom,
            damp1,
            ACC,
            HAS_G2,
            HAS_WD,
            HAS_MOM,
            FIRST,
            NESTEROV,
            MAXIMIZE,
            LR_TENSOR,
            False,
        )
    else:
        _sgd_chunk(
            p_ptr,
            g_ptr,
            g2_ptr,
            b_ptr,
            offs,
            count,
            lr,
            wd,
            mom,
            damp1,
            ACC,
            HAS_G2,
            HAS_WD,
            HAS_MOM,
            FIRST,
            NESTEROV,
            MAXIMIZE,
            LR_TENSOR,
            True,
        )


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
    """Combine + ``torch.optim.SGD`` update in one launch per dtype group, see :func:`reference.sgd_step`.

    ``found_inf``: ``None`` or a one-element float32 tensor on the params' device; non-zero skips
    the update (read on the device)."""
    if not params:
        return
    acc = acc_dtype(params[0].dtype)
    device = params[0].device
    if found_inf is not None:
        _check_found_inf(found_inf, device)
    lists = [params, grads]
    if grads2 is not None:
        lists.append(grads2)
    if momentum != 0:
        lists.append(momentum_buffers)
    with device_guard(device):
        pl = plan(lists)
        hyper = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "1 - dampening": 1 - dampening}
        scalars = [device_scalar(v, acc, device, name) for name, v in hyper.items()]
        flag = scalars[0] if found_inf is None else found_inf  # not read without HAS_FOUND_INF
        for g in pl.groups:
            _sgd_kernel[(g.n_chunks,)](
                g.layout,
                g.addrs,
                g.n_tensors,
                *scalars,
                flag,
                HAS_FOUND_INF=found_inf is not None,
                P_DT=g.dtypes[0],
                G_DT=g.dtypes[1],
                G2_DT=g.dtypes[2 if grads2 is not None else 1],
                B_DT=g.dtypes[-1],
                ACC=tl_dtype(acc),
                HAS_G2=grads2 is not None,
                HAS_WD=weight_decay != 0,
                HAS_MOM=momentum != 0,
                FIRST=first_step,
                NESTEROV=nesterov,
                MAXIMIZE=maximize,
                LR_TENSOR=isinstance(lr, Tensor),
                B_LIST=len(lists) - 1,
                ALIGN=g.align,
                BLOCK=pl.block,
                num_warps=8,
                enable_fp_fusion=False,
            )


def _check_found_inf(found_inf: Tensor, device: torch.device) -> None:
    """``found_inf`` must be one float32 element on ``device`` (read in place by the kernel)."""
    if not isinstance(found_inf, Tensor) or found_inf.numel() != 1 or found_inf.dtype != torch.float32:
        what = (
            f"shape {tuple(found_inf.shape)}, dtype {found_inf.dtype}"
            if isinstance(found_inf, Tensor)
            else type(found_inf).__name__
        )
        raise ValueError(f"found_inf must be None or a one-element float32 tensor, got {what}")
    if found_inf.device != device:
        raise ValueError(f"found_inf is on {found_inf.device} but the params are on {device}")
