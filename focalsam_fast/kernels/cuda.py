"""CUDA C++ implementation of the multi-tensor passes, for CUDA tensors.

The passes are the ``focalsam::`` custom ops of :mod:`._native` (semantics of
:mod:`focalsam_fast.kernels.reference`), run by the torch-free module ``focalsam_fast._C_cuda``:
multi-tensor launches (65,536-element chunks, 512 threads, metadata passed by value), hyper-
parameters read from device tensors, deterministic two-pass norm, no host synchronisation.
Importing this module raises :class:`ImportError` when ``_C_cuda`` is not built (no nvcc at build
time, or ``FOCALSAM_NO_CUDA=1``), which the dispatcher reports.
"""

from __future__ import annotations

import torch

from ._fused import OFFICIAL, add_grads, fuses_update, keep_grads, storage_swap
from ._native import focal_loss, load, perturb, sgd_step, sq_norm

__all__ = [
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

load("cuda")


def is_available(device: torch.device) -> tuple[bool, str]:
    """CUDA devices, when torch sees a GPU."""
    if device.type != "cuda":
        return False, f"the CUDA kernels run on CUDA tensors only, not on {device} (use impl='cpp' there)"
    if not torch.cuda.is_available():
        return False, "torch.cuda.is_available() is False (no GPU or driver visible)"
    return True, ""
