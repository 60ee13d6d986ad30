"""GradScaler plumbing without host syncs: the loss scale stays a device tensor, the inf check of
the final gradient is the scaler's own (``_unscale_grads_``), and the skip decision is handed to
the fused SGD kernel as ``found_inf`` instead of being read on the host.

``torch.amp.GradScaler`` offers no public sync-free path for an optimizer that is not one of
torch's fused ones, so this module uses three of its private members (``_scale`` with
``_lazy_init_scale_growth_tracker``, ``_unscale_grads_`` and ``_per_optimizer_states``); the
optimizer tests run them against the installed torch.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.amp.grad_scaler import OptState
from torch.optim import Optimizer


def loss_scale(scaler: torch.amp.GradScaler, device: torch.device) -> Tensor:
    """The scaler's current scale as its 0-dim float32 device tensor (no host read)."""
    if scaler._scale is None:
        scaler._lazy_init_scale_growth_tracker(device)
    return scaler._scale


def inverse(scale: Tensor) -> Tensor:
    """``1 / scale`` rounded as ``GradScaler.unscale_`` does (in float64, then to float32)."""
    return scale.double().reciprocal().float()


def unscale(scaler: torch.amp.GradScaler, optimizer: Optimizer, extra: Tensor | None) -> Tensor:
    """Unscale every ``.grad`` of ``optimizer`` in place exactly as ``GradScaler.unscale_`` and
    return the step's ``found_inf`` (0-dim float32 on the scale's device; ``extra`` is ORed in)."""
    scale = scaler._scale
    found = torch.zeros((), dtype=torch.float32, device=scale.device)
    per_device = scaler._unscale_grads_(optimizer, inverse(scale), found, False)
    for flag in per_device.values():
        found = torch.maximum(found, flag.to(scale.device, non_blocking=True))
    if extra is not None:
        found = torch.maximum(found, extra.to(scale.device, non_blocking=True))
    return found


def update(scaler: torch.amp.GradScaler, optimizer: Optimizer, found_inf: Tensor) -> None:
    """Tell the scaler the step of ``optimizer`` is done with ``found_inf`` and update the scale
    (backs off on an inf, grows after ``growth_interval`` clean steps), without a host read."""
    scaler._per_optimizer_states[id(optimizer)] = {
        "stage": OptState.STEPPED,
        "found_inf_per_device": {found_inf.device: found_inf},
    }
    scaler.update()
