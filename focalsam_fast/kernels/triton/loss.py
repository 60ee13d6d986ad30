r"""Row-wise focal loss kernel: per-sample losses and both weighted logit gradients in one launch.

For row :math:`i` with label :math:`y` and per-class tables ``scale`` (a), ``bias`` (b),
``margin`` (m), ``weight`` (w) and Focal-SAM coefficients ``coeff`` (c), gathered by label on the
device (no ``unique``, no host sync):

.. math::
    z'_j &= a_j z_j + b_j - m_y [j = y], \qquad
    M = \max_j z'_j, \quad S = \sum_j e^{z'_j - M} \\
    l_i &= w_y \big(M + \log S - z'_y\big), \qquad
    \frac{\partial l_i}{\partial z_j} = w_y\, a_j \big(e^{z'_j - M} / S - [j = y]\big) \\
    \text{grad\_a}_{ij} &= \frac{1 - c_y}{B} \frac{\partial l_i}{\partial z_j}, \qquad
    \text{grad\_b}_{ij} = \frac{c_y}{B} \frac{\partial l_i}{\partial z_j}.

One program per row (the Liger-Kernel cross-entropy pattern): pass 1 streams the row in chunks of
``BLOCK_C`` with an online max / rescaled sum of exponentials; pass 2 re-reads the row and writes
both gradients.  Arithmetic in float32 (float64 for float64 logits), outputs in the logits dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..reference import acc_dtype
from .multi_tensor import tl_dtype

MAX_BLOCK_C = 4096


@triton.jit
def _adjusted(z_row, scale, bias, cols, n_cols, y, margin_y, ACC: tl.constexpr):
    """Adjusted logits ``a_j z_j + b_j - m_y [j = y]`` (``-inf`` past the row end) and ``a_j``."""
    mask = cols < n_cols
    z = tl.load(z_row + cols, mask=mask, other=0.0).to(ACC)
    a = tl.load(scale + cols, mask=mask, other=0.0).to(ACC)
    adj = z * a + tl.load(bias + cols, mask=mask, other=0.0).to(ACC) - tl.where(cols == y, margin_y, 0.0)
    return tl.where(mask, adj, -float("inf")), a


@triton.jit
def _focal_loss_kernel(logits, stride_row, targets, coeff, scale, bias, margin, weight,
                       losses, grad_a, grad_b, n_rows, n_cols,
                       HAS_WEIGHT: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr):
    """Loss and both logit-gradient rows for row ``program_id``."""
    row = tl.program_id(0).to(tl.int64)
    z_row = logits + row * stride_row
    y = tl.load(targets + row)
    margin_y = tl.load(margin + y).to(ACC)
    cols = tl.arange(0, BLOCK_C)
    # pass 1: online max M and sum S (first chunk peeled so the loop-carried values are typed)
    adj, _ = _adjusted(z_row, scale, bias, cols, n_cols, y, margin_y, ACC)
    m = tl.max(adj, axis=0)
    s = tl.sum(tl.exp(adj - m), axis=0)
    for start in range(BLOCK_C, n_cols, BLOCK_C):
        adj, _ = _adjusted(z_row, scale, bias, start + cols, n_cols, y, margin_y, ACC)
        m_new = tl.maximum(m, tl.max(adj, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(adj - m_new), axis=0)
        m = m_new
    adj_y = tl.load(z_row + y).to(ACC) * tl.load(scale + y).to(ACC) + tl.load(bias + y).to(ACC) - margin_y
    loss = (m + tl.log(s)) - adj_y
    if HAS_WEIGHT:
        w = tl.load(weight + y).to(ACC)
        loss = loss * w
    tl.store(losses + row, loss.to(losses.dtype.element_ty))
    cy = tl.load(coeff + y).to(ACC)
    fa = (1.0 - cy) / n_rows
    fb = cy / n_rows
    out_a = grad_a + row * n_cols
    out_b = grad_b + row * n_cols
    # pass 2: cotangent softmax - onehot, times w_y a_j, times the two per-sample factors
    for start in range(0, n_cols, BLOCK_C):
        c = start + cols
        adj, a = _adjusted(z_row, scale, bias, c, n_cols, y, margin_y, ACC)
        cot = tl.exp(adj - m) / s - tl.where(c == y, 1.0, 0.0)
        if HAS_WEIGHT:
            cot = cot * w
        cot = cot * a
        mask = c < n_cols
        tl.store(out_a + c, (cot * fa).to(grad_a.dtype.element_ty), mask=mask)
        tl.store(out_b + c, (cot * fb).to(grad_b.dtype.element_ty), mask=mask)


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    coeff: Tensor,
    scale: Tensor,
    bias: Tensor,
    margin: Tensor,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(losses [B], grad_a [B, C], grad_b [B, C])`` in one launch, see :func:`reference.focal_loss`.

    ``targets`` must lie in ``[0, C)`` (not checked on the device).
    """
    n_rows, n_cols = logits.shape
    tl_dtype(logits.dtype)
    losses = torch.empty(n_rows, dtype=logits.dtype, device=logits.device)
    grad_a = torch.empty((n_rows, n_cols), dtype=logits.dtype, device=logits.device)
    grad_b = torch.empty_like(grad_a)
    if n_rows == 0:
        return losses, grad_a, grad_b
    if logits.stride(1) != 1:
        logits = logits.contiguous()
    coeff, scale, bias, margin = (x.contiguous() for x in (coeff, scale, bias, margin))
    block_c = min(triton.next_power_of_2(n_cols), MAX_BLOCK_C)
    _focal_loss_kernel[(n_rows,)](
        logits, logits.stride(0), targets.contiguous(), coeff, scale, bias, margin,
        coeff if weight is None else weight.contiguous(), losses, grad_a, grad_b, n_rows, n_cols,
        HAS_WEIGHT=weight is not None, ACC=tl_dtype(acc_dtype(logits.dtype)), BLOCK_C=block_c,
        num_warps=max(1, min(8, block_c // 256)),
    )
    return losses, grad_a, grad_b
