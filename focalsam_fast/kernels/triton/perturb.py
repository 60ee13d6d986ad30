r"""Multi-tensor SAM perturbation: ``perturb``.

.. math::
    s = \frac{\rho}{\lVert h \rVert\,\iota + 10^{-12}}\,\iota, \qquad
    \text{out}_t = \begin{cases} p_t + (p_t^2 \text{ if adaptive else } 1)\,(g_t\,s)
        & \lVert h \rVert \text{ finite} \\ p_t & \text{otherwise (NaN or } \pm\infty) \end{cases}

with :math:`\iota` = ``inv_scale`` (1 / GradScaler scale).  ``s`` and the finiteness test are
computed inside the kernel from the device tensors ``norm``, ``rho`` and ``inv_scale`` (floats become
cached device scalars), so no host sync; ``params`` are never written, ``out`` receives
:math:`w + \varepsilon`.  A non-finite norm (an overflowed AMP gradient) selects ``p`` itself, not
``p + 0 g``, which would be NaN where ``g`` is infinite.  Each operation rounds on its own, in the
order of :func:`reference.perturb` (``csrc/common/formulas.h``; the launch disables Triton's
multiply-add contraction, ``enable_fp_fusion=False``), so the result is bit-identical to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import triton
import triton.language as tl
from torch import Tensor

from ..reference import NORM_EPS, acc_dtype
from .guard import device_guard
from .multi_tensor import device_scalar, plan, tl_dtype


@triton.jit
def _perturb_chunk(
    p_ptr,
    g_ptr,
    o_ptr,
    offs,
    count,
    scale,
    finite,
    ACC: tl.constexpr,
    ADAPTIVE: tl.constexpr,
    MASKED: tl.constexpr,
):
    mask = (offs < count) if MASKED else None
    other = 0.0 if MASKED else None
    p = tl.load(p_ptr + offs, mask=mask, other=other).to(ACC)
    e = tl.load(g_ptr + offs, mask=mask, other=other).to(ACC) * scale
    if ADAPTIVE:
        e = (p * p) * e
    tl.store(o_ptr + offs, tl.where(finite, p + e, p).to(o_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _perturb_kernel(
    layout,
    addrs,
    n_tensors,
    norm,
    rho,
    inv_scale,
    EPS: tl.constexpr,
    P_DT: tl.constexpr,
    G_DT: tl.constexpr,
    O_DT: tl.constexpr,
    ACC: tl.constexpr,
    ADAPTIVE: tl.constexpr,
    ALIGN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``out = p + (p * p) * (g * s)`` (``out = p`` for a non-finite norm) for chunk ``program_id``;
    lists: 0 params, 1 grads, 2 out."""
    pid = tl.program_id(0)
    t = tl.load(layout + pid * 3)
    start = tl.load(layout + pid * 3 + 1)
    count = tl.load(layout + pid * 3 + 2)
    p_ptr = tl.multiple_of(tl.load(addrs + t).to(tl.pointer_type(P_DT)) + start, ALIGN)
    g_ptr = tl.multiple_of(tl.load(addrs + n_tensors + t).to(tl.pointer_type(G_DT)) + start, ALIGN)
    o_ptr = tl.multiple_of(tl.load(addrs + 2 * n_tensors + t).to(tl.pointer_type(O_DT)) + start, ALIGN)
    n = tl.load(norm)
    finite = tl.abs(n) < float("inf")  # False for NaN and +-inf
    inv = tl.load(inv_scale)
    scale = tl.load(rho) / (n * inv + tl.full([], EPS, ACC)) * inv
    offs = tl.arange(0, BLOCK)
    if count == BLOCK:
        _perturb_chunk(p_ptr, g_ptr, o_ptr, offs, count, scale, finite, ACC, ADAPTIVE, False)
    else:
        _perturb_chunk(p_ptr, g_ptr, o_ptr, offs, count, scale, finite, ACC, ADAPTIVE, True)


def perturb(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    out: Sequence[Tensor],
    norm: Tensor,
    rho: float | Tensor,
    adaptive: bool = False,
    inv_scale: float | Tensor = 1.0,
) -> None:
    """``out = p + (p * p) * (g * s)`` in one launch per dtype group, see :func:`reference.perturb`."""
    if not params:
        return
    acc = acc_dtype(params[0].dtype)
    device = params[0].device
    with device_guard(device):
        pl = plan([params, grads, out])
        norm_t = device_scalar(norm, acc, device, "norm")
        rho_t = device_scalar(rho, acc, device, "rho")
        inv_t = device_scalar(inv_scale, acc, device, "inv_scale")
        for g in pl.groups:
            _perturb_kernel[(g.n_chunks,)](
                g.layout,
                g.addrs,
                g.n_tensors,
                norm_t,
                rho_t,
                inv_t,
                EPS=NORM_EPS,
                P_DT=g.dtypes[0],
                G_DT=g.dtypes[1],
                O_DT=g.dtypes[2],
                ACC=tl_dtype(acc),
                ADAPTIVE=adaptive,
                ALIGN=g.align,
                BLOCK=pl.block,
                num_warps=8,
                enable_fp_fusion=False,
            )
