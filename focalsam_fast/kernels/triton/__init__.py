"""Triton implementation of the multi-tensor passes (same semantics as ``reference``).

One launch per pass over all tensors (see :mod:`.multi_tensor`), hyper-parameters read from
device scalars (no host sync), a deterministic two-launch norm, and a one-kernel focal loss.
Every wrapper launches on its tensors' device and that device's current stream (:mod:`.guard`).
Runs on CUDA GPUs, or on CPU tensors in Triton's interpreter when ``TRITON_INTERPRET=1`` is set
before this package is imported (slow; for tests).
"""

from __future__ import annotations

try:
    import triton  # noqa: F401
except ImportError as exc:  # the dispatcher records this message as the reason
    raise ImportError(
        "the Triton kernels need the 'triton' package (pip install triton, or focalsam-fast[triton])"
    ) from exc

import torch
from triton.runtime.interpreter import InterpretedFunction

from .._fused import OFFICIAL, add_grads, fuses_update, keep_grads, storage_swap
from .loss import focal_loss
from .norm import _sum_kernel, sq_norm
from .perturb import perturb
from .sgd import sgd_step

__all__ = [
    "INTERPRETED",
    "OFFICIAL",
    "add_grads",
    "focal_loss",
    "fuses_update",
    "is_available",
    "keep_grads",
    "perturb",
    "perturb_params",
    "sgd_step",
    "sq_norm",
]

perturb_params = storage_swap(perturb)

INTERPRETED: bool = isinstance(_sum_kernel, InterpretedFunction)
"""Whether the kernels were decorated under ``TRITON_INTERPRET=1`` (CPU interpreter)."""

_NEEDS = "Triton needs a CUDA GPU (or TRITON_INTERPRET=1 for the CPU interpreter)"


def is_available(device: torch.device) -> tuple[bool, str]:
    """CUDA devices when a GPU is present (and the kernels are compiled, not interpreted); CPU
    devices only in the interpreter (``TRITON_INTERPRET=1`` set before import)."""
    if device.type == "cuda":
        if INTERPRETED:
            return False, "TRITON_INTERPRET=1 was set at import: the Triton kernels only run on CPU tensors"
        if not torch.cuda.is_available():
            return False, _NEEDS
        return True, ""
    if device.type == "cpu" and INTERPRETED:
        return True, ""
    return False, _NEEDS
