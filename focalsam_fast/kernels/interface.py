"""The kernel interface, declared once: what every implementation module provides.

Each of ``reference``, ``foreach``, ``cpp``, ``cuda`` and ``triton`` is a module that satisfies
:class:`KernelModule` (checked by ``tests/kernels/test_kernel_interface.py``: same functions, same
parameter names, kinds and defaults).  The semantics are those of
:mod:`focalsam_fast.kernels.reference`, the executable spec; the shared conventions are in its
module docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

FUNCTIONS = ("is_available", "sq_norm", "perturb", "sgd_step", "focal_loss")


class KernelModule(Protocol):
    """The passes of one implementation (see :mod:`focalsam_fast.kernels.reference`)."""

    def is_available(self, device: torch.device) -> tuple[bool, str]:
        """Whether the implementation runs on ``device``, and if not, why."""

    def sq_norm(self, grads: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
        r""":math:`\sum_t \lVert a_t \odot g_t \rVert_2^2` (``a_t = |p_t|`` with ``params``, else 1)."""

    def perturb(self, params: Sequence[Tensor], grads: Sequence[Tensor], out: Sequence[Tensor],
                norm: Tensor, rho: float | Tensor, adaptive: bool = False,
                inv_scale: float | Tensor = 1.0) -> None:
        r"""``out_t = p_t + s (p_t^2 if adaptive) g_t`` with
        :math:`s = \rho\iota/(\lVert h\rVert\iota + 10^{-12})`; ``out_t = p_t`` for a non-finite norm."""

    def sgd_step(self, params: Sequence[Tensor], grads: Sequence[Tensor], grads2: Sequence[Tensor] | None,
                 momentum_buffers: Sequence[Tensor], *, lr: float | Tensor, momentum: float,
                 dampening: float, weight_decay: float, nesterov: bool, maximize: bool,
                 first_step: bool, found_inf: Tensor | None = None) -> None:
        """``g = g1 (+ g2)`` and one exact ``torch.optim.SGD`` update; nothing written when
        ``found_inf`` is non-zero."""

    def focal_loss(self, logits: Tensor, targets: Tensor, coeff: Tensor, scale: Tensor, bias: Tensor,
                   margin: Tensor, weight: Tensor | None = None,
                   grad_scale: float | Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample losses and the two weighted logit gradients (scaled by ``grad_scale``)."""
