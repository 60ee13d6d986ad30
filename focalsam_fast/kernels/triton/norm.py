r"""Deterministic multi-tensor sum of squares: ``sq_norm`` (plain and adaptive).

.. math::
    S = \sum_t \sum_k (a_{tk}\, g_{tk})^2, \qquad a_{tk} = |p_{tk}| \text{ (adaptive) or } 1,

accumulated in float32 (float64 for float64 gradients).  Two launches, no atomics:

1. ``_partials_kernel``: program ``c`` reduces chunk ``c`` of the plan to ``partial[c]``;
2. ``_sum_kernel``: one program adds the partials in a fixed order.

For a fixed parameter list the result is therefore bitwise reproducible run to run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..reference import acc_dtype
from .guard import device_guard
from .multi_tensor import plan, tl_dtype

SUM_BLOCK = 1024


@triton.jit
def _chunk_sq_sum(g_ptr, p_ptr, offs, count, ACC: tl.constexpr, ADAPTIVE: tl.constexpr, MASKED: tl.constexpr):
    mask = (offs < count) if MASKED else None
    other = 0.0 if MASKED else None
    v = tl.load(g_ptr + offs, mask=mask, other=other).to(ACC)
    if ADAPTIVE:
        v = tl.abs(tl.load(p_ptr + offs, mask=mask, other=other).to(ACC)) * v
    return tl.sum(v * v, axis=0)


@triton.jit
def _partials_kernel(
    layout,
    addrs,
    n_tensors,
    partials,
    G_DT: tl.constexpr,
    P_DT: tl.constexpr,
    ACC: tl.constexpr,
    ADAPTIVE: tl.constexpr,
    ALIGN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``partials[c] = sum over chunk c of (a * g)^2``; lists: 0 grads, [1 params]."""
    pid = tl.program_id(0)
    t = tl.load(layout + pid * 3)
    start = tl.load(layout + pid * 3 + 1)
    count = tl.load(layout + pid * 3 + 2)
    g_ptr = tl.multiple_of(tl.load(addrs + t).to(tl.pointer_type(G_DT)) + start, ALIGN)
    p_ptr = g_ptr
    if ADAPTIVE:
        p_ptr = tl.multiple_of(tl.load(addrs + n_tensors + t).to(tl.pointer_type(P_DT)) + start, ALIGN)
    offs = tl.arange(0, BLOCK)
    if count == BLOCK:
        s = _chunk_sq_sum(g_ptr, p_ptr, offs, count, ACC, ADAPTIVE, False)
    else:
        s = _chunk_sq_sum(g_ptr, p_ptr, offs, count, ACC, ADAPTIVE, True)
    tl.store(partials + pid, s)


@triton.jit
def _sum_kernel(x, n, out, BLOCK: tl.constexpr):
    """``out = sum(x[:n])`` in one program, in a fixed order (deterministic)."""
    acc = tl.zeros([BLOCK], dtype=out.dtype.element_ty)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        acc += tl.load(x + offs, mask=offs < n, other=0.0)
    tl.store(out, tl.sum(acc, axis=0))


def sq_norm(grads: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
    r""":math:`\sum_t \lVert a_t \odot g_t \rVert_2^2` as a 0-dim tensor, see :func:`reference.sq_norm`."""
    if not grads:
        raise ValueError("sq_norm needs at least one gradient tensor")
    acc = acc_dtype(grads[0].dtype)
    device = grads[0].device
    with device_guard(device):
        pl = plan([grads] if params is None else [grads, params])
        partials = torch.empty(pl.n_chunks, dtype=acc, device=device)
        for g in pl.groups:
            _partials_kernel[(g.n_chunks,)](
                g.layout,
                g.addrs,
                g.n_tensors,
                partials[g.offset :],
                G_DT=g.dtypes[0],
                P_DT=g.dtypes[-1],
                ACC=tl_dtype(acc),
                ADAPTIVE=params is not None,
                ALIGN=g.align,
                BLOCK=pl.block,
                num_warps=8,
            )
        out = torch.empty((), dtype=acc, device=device)
        _sum_kernel[(1,)](partials, pl.n_chunks, out, BLOCK=SUM_BLOCK, num_warps=4)
    return out
