"""The kernel interface, declared once: what every implementation module provides.

Each of ``reference``, ``foreach``, ``cpp``, ``cuda`` and ``triton`` is a module that satisfies
:class:`KernelModule` (checked by ``tests/kernels/test_kernel_interface.py``: same functions, same
parameter names, kinds and defaults, same attributes).  The semantics are those of
:mod:`focalsam_fast.kernels.reference`, the executable spec; the shared conventions are in its
module docstring.

Two layers:

* the passes (:data:`FUNCTIONS`): ``sq_norm``, ``perturb``, ``sgd_step``, ``focal_loss``, which every
  implementation computes with the same per-element rounding order;
* the optimizer-side passes (:data:`STEP_FUNCTIONS`), through which :class:`~focalsam_fast.optim.SAMBase`
  calls every implementation the same way, as ``torch.optim.SGD`` calls its single-tensor, foreach and
  fused variants through one signature.  ``reference`` runs them as the official code does (a clone
  of the gradient and of :math:`w`, per-tensor adds, the base optimizer's own step); the fused
  implementations share :mod:`._fused` (the tensors themselves, a storage swap, one multi-tensor add,
  ``sgd_step`` in place of ``torch.optim.SGD.step``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.optim import Optimizer

FUNCTIONS = ("is_available", "sq_norm", "perturb", "sgd_step", "focal_loss")
STEP_FUNCTIONS = ("keep_grads", "perturb_params", "add_grads", "fuses_update")
ATTRIBUTES = ("OFFICIAL",)


class KernelModule(Protocol):
    """The passes of one implementation (see :mod:`focalsam_fast.kernels.reference`)."""

    OFFICIAL: bool
    """True when the optimizer-side passes are the official code's own per-tensor operations
    (``reference``); an optimizer then keeps the official algorithm where it has a faster exact
    equivalent (CC-SAM's closed-form head)."""

    def is_available(self, device: torch.device) -> tuple[bool, str]:
        """Whether the implementation runs on ``device``, and if not, why."""

    def sq_norm(self, grads: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
        r""":math:`\sum_t \lVert a_t \odot g_t \rVert_2^2` (``a_t = |p_t|`` with ``params``, else 1)."""

    def perturb(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        out: Sequence[Tensor],
        norm: Tensor,
        rho: float | Tensor,
        adaptive: bool = False,
        inv_scale: float | Tensor = 1.0,
    ) -> None:
        r"""``out_t = p_t + (p_t^2 if adaptive) (g_t s)`` with
        :math:`s = \rho/(\lVert h\rVert\iota + 10^{-12})\,\iota`, in this rounding order (docs/spec.md §3);
        ``out_t = p_t`` for a non-finite norm."""

    def sgd_step(
        self,
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
        """``g = g1 (+ g2)`` and one exact ``torch.optim.SGD`` update; nothing written when
        ``found_inf`` is non-zero."""

    def focal_loss(
        self,
        logits: Tensor,
        targets: Tensor,
        coeff: Tensor,
        scale: Tensor,
        bias: Tensor,
        margin: Tensor,
        weight: Tensor | None = None,
        grad_scale: float | Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample losses and the two weighted logit gradients (scaled by ``grad_scale``)."""

    def keep_grads(self, grads: Sequence[Tensor]) -> list[Tensor]:
        """The gradients ``g2`` kept for the final update (the caller then clears ``.grad``)."""

    def perturb_params(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        norm: Tensor,
        rho: float | Tensor,
        adaptive: bool,
        inv_scale: float | Tensor,
        spares: dict[Tensor, tuple[Tensor, Tensor]],
        norm_finite: Callable[[], bool],
    ) -> list[Tensor]:
        """Move every ``p`` to :math:`w + \\epsilon` (the formula of :meth:`perturb`) and return the
        saved :math:`w` tensors (``p.data = saved`` restores :math:`w` bit for bit).  ``spares`` is a
        cache the caller keeps across steps; ``norm_finite()`` (memoised, True without a host read
        when the step has no non-finite guard) is asked only by passes that cannot keep :math:`w`
        on the device."""

    def add_grads(self, grads: Sequence[Tensor], grads2: Sequence[Tensor]) -> None:
        """``grads[t] += grads2[t]`` in place, before a base optimizer's own step."""

    def fuses_update(self, base_optimizer: Optimizer, group: dict[str, Any]) -> bool:
        """Whether :meth:`sgd_step` replaces ``base_optimizer.step()`` for ``group``."""
