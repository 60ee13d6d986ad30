r"""Row-wise focal loss kernel: per-sample losses and both weighted logit gradients in one launch.

For row :math:`i` with label :math:`y` and per-class tables ``scale`` (a), ``bias`` (b),
``margin`` (m), ``weight`` (w) and Focal-SAM coefficients ``coeff`` (c), gathered by label on the
device (no ``unique``, no host sync), and the AMP loss scale :math:`\sigma` (``grad_scale``, 1 when
``None``):

.. math::
    z'_j &= a_j z_j + b_j - m_y [j = y], \qquad
    M = \max_j z'_j, \quad S = \sum_j e^{z'_j - M} \\
    l_i &= w_y \big(M + \log S - z'_y\big), \qquad
    \frac{\partial l_i}{\partial z_j} = w_y\, a_j \big(e^{z'_j - M} / S - [j = y]\big) \\
    \text{grad\_a}_{ij} &= \frac{\partial l_i}{\partial z_j} \frac{1 - c_y}{B}\,\sigma, \qquad
    \text{grad\_b}_{ij} = \frac{\partial l_i}{\partial z_j} \frac{c_y}{B}\,\sigma.

One program per row (the Liger-Kernel cross-entropy pattern): pass 1 streams the row in chunks of
``BLOCK_C`` with an online max / rescaled sum of exponentials; pass 2 re-reads the row and writes
both gradients.  Arithmetic in float32 (float64 for float64 logits), including the product with
:math:`\sigma`, so small fp16 gradients are scaled before they are rounded (not flushed to zero);
outputs in the logits dtype.

Non-finite values follow ``torch.logsumexp`` / ``torch.softmax`` on :math:`z'` (the reference):

* a NaN in :math:`z'` (NaN logit, ``0 * inf``, ...): loss and both gradient rows NaN (counted
  explicitly: the max skips NaNs, so a row with a NaN and a +inf would otherwise get an inf loss);
* :math:`M = +\infty`: :math:`\log\sum e^{z'} = +\infty`, :math:`l_i = w_y(\infty - z'_y)` (inf or
  NaN), and the softmax row is NaN (``exp(inf - inf)``), so both gradient rows are NaN;
* all :math:`z'_j = -\infty`: :math:`\log\sum e^{z'} = -\infty`, :math:`l_i` NaN, gradients NaN.

A label outside ``[0, C)`` is replaced by 0 for every table read (no out-of-bounds access) and its
row's loss and gradients are NaN.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..reference import acc_dtype
from .guard import device_guard
from .multi_tensor import device_scalar, tl_dtype

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
def _shift(m):
    """The value subtracted before ``exp``: ``m``, or 0 when ``m = -inf`` (``exp(-inf - 0) = 0``)."""
    return tl.where(m == -float("inf"), 0.0, m)


@triton.jit
def _focal_loss_kernel(
    logits,
    stride_row,
    targets,
    coeff,
    scale,
    bias,
    margin,
    weight,
    grad_scale,
    losses,
    grad_a,
    grad_b,
    n_rows,
    n_cols,
    HAS_WEIGHT: tl.constexpr,
    HAS_GRAD_SCALE: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Loss and both logit-gradient rows for row ``program_id``."""
    row = tl.program_id(0).to(tl.int64)
    z_row = logits + row * stride_row
    label = tl.load(targets + row)
    bad_label = (label < 0) | (label >= n_cols)
    y = tl.where(bad_label, 0, label)  # every table read below stays in bounds
    margin_y = tl.load(margin + y).to(ACC)
    cols = tl.arange(0, BLOCK_C)
    # pass 1: NaN count, online max M over the non-NaN entries and sum S of exp(z' - shift(M))
    # (first chunk peeled so the loop-carried values are typed)
    adj, _ = _adjusted(z_row, scale, bias, cols, n_cols, y, margin_y, ACC)
    n_nan = tl.sum((adj != adj).to(tl.int32), axis=0)
    m = tl.max(tl.where(adj != adj, -float("inf"), adj), axis=0)
    s = tl.sum(tl.exp(adj - _shift(m)), axis=0)
    for start in range(BLOCK_C, n_cols, BLOCK_C):
        adj, _ = _adjusted(z_row, scale, bias, start + cols, n_cols, y, margin_y, ACC)
        n_nan += tl.sum((adj != adj).to(tl.int32), axis=0)
        m_new = tl.maximum(m, tl.max(tl.where(adj != adj, -float("inf"), adj), axis=0))
        s = s * tl.where(m == m_new, 1.0, tl.exp(m - m_new)) + tl.sum(tl.exp(adj - _shift(m_new)), axis=0)
        m = m_new
    infinite_max = tl.abs(m) == float("inf")
    lse = tl.where(infinite_max, m, m + tl.log(s))
    adj_y = tl.load(z_row + y).to(ACC) * tl.load(scale + y).to(ACC) + tl.load(bias + y).to(ACC) - margin_y
    loss = lse - adj_y
    if HAS_WEIGHT:
        w = tl.load(weight + y).to(ACC)
        loss = loss * w
    nan_row = (n_nan > 0) | bad_label
    tl.store(losses + row, tl.where(nan_row, float("nan"), loss).to(losses.dtype.element_ty))
    cy = tl.load(coeff + y).to(ACC)
    fa = (1.0 - cy) / n_rows
    fb = cy / n_rows
    if HAS_GRAD_SCALE:
        sigma = tl.load(grad_scale).to(ACC)
    out_a = grad_a + row * n_cols
    out_b = grad_b + row * n_cols
    # pass 2: cotangent softmax - onehot, times w_y a_j, times the two per-sample factors (and sigma).
    # M = +inf makes S NaN (exp(inf - inf) in pass 1) and M = -inf gives exp(-inf - -inf) = NaN, so
    # those rows are NaN by arithmetic, as in torch.softmax; NaN rows and bad labels are masked.
    for start in range(0, n_cols, BLOCK_C):
        c = start + cols
        adj, a = _adjusted(z_row, scale, bias, c, n_cols, y, margin_y, ACC)
        cot = tl.exp(adj - m) / s - tl.where(c == y, 1.0, 0.0)
        if HAS_WEIGHT:
            cot = cot * w
        cot = cot * a
        ga = cot * fa
        gb = cot * fb
        if HAS_GRAD_SCALE:
            ga = ga * sigma
            gb = gb * sigma
        mask = c < n_cols
        tl.store(out_a + c, tl.where(nan_row, float("nan"), ga).to(grad_a.dtype.element_ty), mask=mask)
        tl.store(out_b + c, tl.where(nan_row, float("nan"), gb).to(grad_b.dtype.element_ty), mask=mask)


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
    """``(losses [B], grad_a [B, C], grad_b [B, C])`` in one launch, see :func:`reference.focal_loss`.

    ``grad_scale``: ``None`` (1), a float or a one-element tensor (read on the device) multiplying
    both gradients before they are rounded to the logits' dtype.  Labels outside ``[0, C)`` give
    NaN rows (checked on the device, no host sync).
    """
    _check(logits, targets, coeff, scale, bias, margin, weight)
    n_rows, n_cols = logits.shape
    tl_dtype(logits.dtype)
    device = logits.device
    acc = acc_dtype(logits.dtype)
    with device_guard(device):
        losses = torch.empty(n_rows, dtype=logits.dtype, device=device)
        grad_a = torch.empty((n_rows, n_cols), dtype=logits.dtype, device=device)
        grad_b = torch.empty_like(grad_a)
        if n_rows == 0:
            return losses, grad_a, grad_b
        if logits.stride(1) != 1:
            logits = logits.contiguous()
        coeff, scale, bias, margin = (x.contiguous() for x in (coeff, scale, bias, margin))
        sigma = coeff if grad_scale is None else device_scalar(grad_scale, acc, device, "grad_scale")
        block_c = min(triton.next_power_of_2(n_cols), MAX_BLOCK_C)
        _focal_loss_kernel[(n_rows,)](
            logits,
            logits.stride(0),
            targets.contiguous(),
            coeff,
            scale,
            bias,
            margin,
            coeff if weight is None else weight.contiguous(),
            sigma,
            losses,
            grad_a,
            grad_b,
            n_rows,
            n_cols,
            HAS_WEIGHT=weight is not None,
            HAS_GRAD_SCALE=grad_scale is not None,
            ACC=tl_dtype(acc),
            BLOCK_C=block_c,
            num_warps=max(1, min(8, block_c // 256)),
        )
    return losses, grad_a, grad_b


def _check(logits: Tensor, targets: Tensor, *tables: Tensor | None) -> None:
    """Shapes, label dtype and devices, as one-line errors (the kernel trusts them)."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [B, C], got shape {tuple(logits.shape)}")
    rows, cols = logits.shape
    if cols == 0:
        raise ValueError(f"logits must have at least one class column, got shape {tuple(logits.shape)}")
    if targets.shape != (rows,):
        raise ValueError(f"targets must have shape ({rows},) to match logits, got {tuple(targets.shape)}")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    names = ("coeff", "scale", "bias", "margin", "weight")
    for name, t in zip(names, tables, strict=True):
        if t is None:
            continue
        if t.shape != (cols,):
            raise ValueError(f"{name} must have shape ({cols},) (one entry per class), got {tuple(t.shape)}")
    for name, t in zip(("targets", *names), (targets, *tables), strict=True):
        if t is not None and t.device != logits.device:
            raise ValueError(f"{name} is on {t.device} but logits are on {logits.device}")
