r"""Multi-tensor SAM perturbation: ``perturb``.

.. math::
    s = \frac{\rho}{\lVert h \rVert\,\iota + 10^{-12}}\,\iota, \qquad
    \text{out}_t = p_t + s\,(p_t^2 \text{ if adaptive else } 1)\,g_t,

with :math:`\iota` = ``inv_scale`` (1 / GradScaler scale).  ``s`` is computed inside the kernel
from the device tensors ``norm``, ``rho`` and ``inv_scale`` (floats become cached device scalars),
so no host sync; ``params`` are never written, ``out`` receives :math:`w + \varepsilon`.
"""

from __future__ import annotations

from collections.abc import Sequence

import triton
import triton.language as tl
from torch import Tensor

from ..reference import NORM_EPS, acc_dtype
from .multi_tensor import chunk_ptr, device_scalar, load, plan, store, tl_dtype


@triton.jit
def _perturb_chunk(addrs, n_tensors, t, start, offs, count, scale, P_DT: tl.constexpr, G_DT: tl.constexpr,
                   O_DT: tl.constexpr, ACC: tl.constexpr, ADAPTIVE: tl.constexpr, ALIGNED: tl.constexpr,
                   MASKED: tl.constexpr):
    p = load(chunk_ptr(addrs, n_tensors, t, start, 0, P_DT, ALIGNED), offs, count, MASKED).to(ACC)
    e = load(chunk_ptr(addrs, n_tensors, t, start, 1, G_DT, ALIGNED), offs, count, MASKED).to(ACC) * scale
    if ADAPTIVE:
        e = (p * p) * e
    store(chunk_ptr(addrs, n_tensors, t, start, 2, O_DT, ALIGNED), offs, (p + e).to(O_DT), count, MASKED)


@triton.jit
def _perturb_kernel(layout, addrs, n_tensors, norm, rho, inv_scale, EPS: tl.constexpr, P_DT: tl.constexpr,
                    G_DT: tl.constexpr, O_DT: tl.constexpr, ACC: tl.constexpr, ADAPTIVE: tl.constexpr,
                    ALIGNED: tl.constexpr, BLOCK: tl.constexpr):
    """``out = p + s * (p^2) * g`` for chunk ``program_id``; lists: 0 params, 1 grads, 2 out."""
    pid = tl.program_id(0)
    t = tl.load(layout + pid * 3)
    start = tl.load(layout + pid * 3 + 1)
    count = tl.load(layout + pid * 3 + 2)
    inv = tl.load(inv_scale)
    scale = tl.load(rho) / (tl.load(norm) * inv + tl.full([], EPS, ACC)) * inv
    offs = tl.arange(0, BLOCK)
    if count == BLOCK:
        _perturb_chunk(addrs, n_tensors, t, start, offs, count, scale, P_DT, G_DT, O_DT, ACC, ADAPTIVE,
                       ALIGNED, False)
    else:
        _perturb_chunk(addrs, n_tensors, t, start, offs, count, scale, P_DT, G_DT, O_DT, ACC, ADAPTIVE,
                       ALIGNED, True)


def perturb(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    out: Sequence[Tensor],
    norm: Tensor,
    rho: float | Tensor,
    adaptive: bool = False,
    inv_scale: float | Tensor = 1.0,
) -> None:
    """``out = p + s * (p^2) * g`` in one launch per dtype group, see :func:`reference.perturb`."""
    if not params:
        return
    acc = acc_dtype(params[0].dtype)
    device = params[0].device
    pl = plan([params, grads, out])
    norm_t = device_scalar(norm, acc, device)
    rho_t = device_scalar(rho, acc, device)
    inv_t = device_scalar(inv_scale, acc, device)
    for g in pl.groups:
        _perturb_kernel[(g.n_chunks,)](
            g.layout, g.addrs, g.n_tensors, norm_t, rho_t, inv_t,
            EPS=NORM_EPS, P_DT=g.dtypes[0], G_DT=g.dtypes[1], O_DT=g.dtypes[2], ACC=tl_dtype(acc),
            ADAPTIVE=adaptive, ALIGNED=g.aligned, BLOCK=pl.block, num_warps=8,
        )
