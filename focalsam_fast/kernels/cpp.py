"""C++ (OpenMP) implementation of the multi-tensor passes, for CPU tensors.

The passes are the ``focalsam::`` custom ops of :mod:`._native` (semantics of
:mod:`focalsam_fast.kernels.reference`), run by the torch-free module ``focalsam_fast._C_cpu``:
fixed 65,536-element chunks, each of ``torch.get_num_threads()`` OpenMP threads taking an equal
share of the elements, reductions combined in chunk order (bit-identical results for any thread
count).  Importing this module
raises :class:`ImportError` when ``_C_cpu`` is not built, which the dispatcher reports.
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

load("cpu")


def is_available(device: torch.device) -> tuple[bool, str]:
    """CPU devices only (the module itself imported, or this module would not have)."""
    if device.type != "cpu":
        return False, f"the C++ kernels run on CPU tensors only, not on {device} (use impl='cuda' there)"
    return True, ""
