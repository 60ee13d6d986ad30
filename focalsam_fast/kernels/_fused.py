"""The optimizer-side passes of the fused implementations (``foreach``, ``cpp``, ``cuda``, ``triton``).

Each of those modules binds these functions (see :class:`~focalsam_fast.kernels.interface.KernelModule`);
``reference`` has its own, the official per-tensor ones.  Here:

* the kept gradient ``g2`` is the gradient tensor itself (zero bytes copied);
* :math:`w + \\epsilon` is written by the module's ``perturb`` into a spare storage that ``p`` then
  points at, so :math:`w` is saved without a copy and restored by swapping back;
* ``grad + g2`` for a base optimizer's own step is one multi-tensor add, and with the default
  ``torch.optim.SGD`` the module's ``sgd_step`` replaces that step (combine and update in one pass).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

OFFICIAL = False

Perturb = Callable[..., None]  # the module's ``perturb`` (signature of KernelModule.perturb)


def keep_grads(grads: Sequence[Tensor]) -> list[Tensor]:
    """The gradients themselves: the caller drops its own reference (``.grad = None``)."""
    return list(grads)


def add_grads(grads: Sequence[Tensor], grads2: Sequence[Tensor]) -> None:
    """``grads[t] += grads2[t]`` in one ``torch._foreach_add_``."""
    if grads:
        torch._foreach_add_(list(grads), list(grads2))


def fuses_update(base_optimizer: Optimizer, group: dict[str, Any]) -> bool:
    """``sgd_step`` replaces the step of a plain ``torch.optim.SGD`` (not ``differentiable``)."""
    return type(base_optimizer) is torch.optim.SGD and not group.get("differentiable", False)


def _spare(spares: dict[Tensor, tuple[Tensor, Tensor]], p: Tensor) -> tuple[Tensor, Tensor]:
    """``(w storage, spare storage)`` of ``p``, made once and reused (no allocation and no dispatched
    op per step); re-made when ``p`` got a new storage."""
    pair = spares.get(p)
    if pair is None or pair[0].data_ptr() != p.data_ptr() or pair[0].shape != p.shape:
        pair = spares[p] = (p.detach(), torch.empty_like(p))
    return pair


def storage_swap(perturb: Perturb) -> Callable[..., list[Tensor]]:
    """``perturb_params`` of a module whose ``perturb`` is ``perturb``: ``w + eps`` into the spare
    storage, then ``p`` points at it.  ``norm_finite`` is not asked: ``perturb`` itself keeps ``w``
    for a non-finite norm, on the device."""

    def perturb_params(
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        norm: Tensor,
        rho: float | Tensor,
        adaptive: bool,
        inv_scale: float | Tensor,
        spares: dict[Tensor, tuple[Tensor, Tensor]],
        norm_finite: Callable[[], bool],
    ) -> list[Tensor]:
        pairs = [_spare(spares, p) for p in params]
        perturb(params, grads, [b for _, b in pairs], norm, rho, adaptive, inv_scale)
        for p, (_, b) in zip(params, pairs):
            p.data = b
        return [a for a, _ in pairs]

    return perturb_params
