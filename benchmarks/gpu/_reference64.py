"""Chunked float64 references for one huge flat tensor (stage 5 of gpu_check.sh), CPU-testable.

The big-tensor check runs ``sq_norm``, ``perturb`` and ``sgd_step`` on 2^31 + 7 elements, where a
32-bit index overflows.  The references below walk the tensor in chunks of :data:`CHUNK` elements
(so their float64 temporaries stay small) and compare every element.

Tolerances (justified here, used only by the big-tensor check):

* Element-wise results (``perturb``'s ``out``, ``sgd_step``'s weights and momentum buffers) are
  compared with the exact float64 value ``x`` in units of ``eps * m``, where ``eps`` is the
  machine epsilon of the result dtype and ``m`` is the same formula evaluated on absolute values
  (``|p| + |s g|`` for ``p + s g``): each fp32 rounding of an intermediate changes the result by at
  most ``eps/2`` of that intermediate's magnitude, which ``m`` bounds.  ``perturb`` rounds at most
  five times (rho, the scale, ``g s``, ``p^2`` and the sum), ``sgd_step`` at most eight times
  (``g1 + g2``, ``wd p``, ``+``, ``mu b``, ``+``, ``lr b``, ``-``, and lr itself):
  :data:`ELEMENT_ULPS` = 8 covers both.  A wrong index gives an error of order ``1 / eps``.
* The squared norm is a sum of 2^31 positive terms.  The kernels sum in two levels: fp32 tree
  sums within a chunk, then the chunk partials (CUDA: in float64; Triton: 1,024 fp32 lanes of
  about 512 sequential adds each).  Rounding errors of a sequential sum of k positive terms
  random-walk to ~sqrt(k) * 2^-24 relative (~1.4e-6 for k = 512); :data:`NORM_RTOL` = 1e-5 is
  7 of those out.  One lost or doubled 65,536-element chunk changes the sum by 3e-5 relative, and
  the checks plant sentinel entries of 1,000 around index 2^31 so that a lost element there
  changes it by 5e-4.  (ATen's own fp32 CPU norm, ``torch._foreach_norm``, is much worse on such
  inputs: 1.4e-4 on 3 million elements with two sentinels; the big-tensor check does not use it.)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

CHUNK = 1 << 25
ELEMENT_ULPS = 8.0
NORM_RTOL = 1e-5
NORM_EPS = 1e-12  # as focalsam_fast.kernels.reference.NORM_EPS


def spans(n: int, chunk: int = CHUNK) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, ``chunk`` elements each (the last may be shorter)."""
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


def sq_norm64(grads: Tensor, params: Tensor | None = None, chunk: int = CHUNK) -> float:
    r""":math:`\sum_i (|p_i| g_i)^2` (or :math:`\sum_i g_i^2`) of flat tensors, in float64."""
    total = 0.0
    for s in spans(grads.numel(), chunk):
        v = grads[s].double()
        if params is not None:
            v = v * params[s].double().abs()
        total += float(v.square().sum())
    return total


def _worst(actual: Tensor, exact: Tensor, magnitude: Tensor) -> tuple[float, int]:
    """Largest ``|actual - exact| / (eps * magnitude)`` of one chunk and its position (NaN and
    errors where the magnitude is 0 count as infinite)."""
    eps = torch.finfo(actual.dtype).eps
    err = (actual.double() - exact).abs()
    ratio = err / (eps * magnitude)
    ratio = torch.where(err == 0, torch.zeros_like(ratio), ratio)
    ratio = torch.nan_to_num(ratio, nan=float("inf"))
    i = int(ratio.argmax())
    return float(ratio[i]), i


class ElementCheck:
    """Running maximum of the scaled element error over chunks; :meth:`verify` raises past the
    tolerance, naming the first worst element (global index, value, exact value)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.max_ulps = 0.0
        self.where: tuple[int, float, float] | None = None

    def add(self, offset: int, actual: Tensor, exact: Tensor, magnitude: Tensor) -> None:
        ulps, i = _worst(actual, exact, magnitude)
        if self.where is None or ulps > self.max_ulps:
            self.max_ulps = ulps
            self.where = (offset + i, float(actual[i]), float(exact[i]))

    def verify(self, ulps: float = ELEMENT_ULPS) -> str:
        index, got, want = self.where if self.where is not None else (-1, 0.0, 0.0)
        detail = (
            f"{self.what}: max error {self.max_ulps:.3g} eps-units (element {index}: {got!r} vs {want!r})"
        )
        if not self.max_ulps <= ulps:
            raise AssertionError(f"{detail} > {ulps}")
        return detail


def check_perturb(
    params: Tensor, grads: Tensor, out: Tensor, norm: float, rho: float, adaptive: bool, chunk: int = CHUNK
) -> str:
    """``out == p + rho / (norm + 1e-12) * (p^2 if adaptive) * g`` element-wise (``inv_scale`` 1)."""
    scale = rho / (norm + NORM_EPS)
    check = ElementCheck("perturb out")
    for s in spans(params.numel(), chunk):
        p, g = params[s].double(), grads[s].double()
        e = scale * g
        if adaptive:
            e = e * p.square()
        check.add(s.start, out[s], p + e, p.abs() + e.abs())
    return check.verify()


def check_sgd(
    params_before: Tensor,
    grads: Tensor,
    grads2: Tensor,
    bufs_before: Tensor,
    params: Tensor,
    bufs: Tensor,
    lr: float,
    momentum: float,
    weight_decay: float,
    chunk: int = CHUNK,
) -> str:
    """One SGD step with momentum (not the first, no dampening, no nesterov) on ``g1 + g2``:
    ``b = mu b0 + (g1 + g2 + wd p0)``, ``p = p0 - lr b``, element-wise."""
    p_check, b_check = ElementCheck("sgd_step params"), ElementCheck("sgd_step momentum buffers")
    for s in spans(params.numel(), chunk):
        p0, b0 = params_before[s].double(), bufs_before[s].double()
        g1, g2 = grads[s].double(), grads2[s].double()
        b = momentum * b0 + (g1 + g2 + weight_decay * p0)
        b_mag = momentum * b0.abs() + g1.abs() + g2.abs() + weight_decay * p0.abs()
        b_check.add(s.start, bufs[s], b, b_mag)
        p_check.add(s.start, params[s], p0 - lr * b, p0.abs() + lr * b_mag)
    return b_check.verify() + "; " + p_check.verify()
