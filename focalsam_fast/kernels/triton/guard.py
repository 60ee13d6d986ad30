"""Device guard of the Triton wrappers: launch on the tensors' device, not the current one.

Triton launches on ``torch.cuda.current_device()`` and its current stream, whatever device the
pointers belong to, so tensors on ``cuda:1`` used while ``cuda:0`` is current would run on the
wrong device (illegal address, or a race with the work queued on ``cuda:1``).  Every wrapper runs
its allocations, table uploads and launches inside :func:`device_guard` of its tensors' device.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def device_guard(device: torch.device) -> AbstractContextManager[object]:
    """``torch.cuda.device(device)`` for a CUDA device (makes it current, with its current stream);
    a no-op context for CPU tensors (the interpreter)."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return nullcontext()
