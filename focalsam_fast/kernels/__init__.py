"""One dispatcher for the SAM-family multi-tensor passes.

Implementations (each a module satisfying :class:`~focalsam_fast.kernels.interface.KernelModule`:
``is_available``, ``sq_norm``, ``perturb``, ``sgd_step``, ``focal_loss``; semantics in
:mod:`focalsam_fast.kernels.reference`):

========== ======================================== =====================
name       what                                     devices
========== ======================================== =====================
reference  per-tensor PyTorch loop (the spec)       any
foreach    ``torch._foreach`` ops                   any
cpp        C++ (OpenMP) native module               CPU
cuda       CUDA C++ native module                   CUDA
triton     Triton kernels                           CUDA (CPU interpreter)
========== ======================================== =====================

``impl="auto"`` picks, per device: CUDA -> cuda, triton, foreach; CPU -> cpp, reference.
An explicit name is always honoured or raises :class:`ImplUnavailableError` naming what is missing.
The fused kernels (``cpp``, ``cuda``, ``triton``) take one floating dtype per list and tensors
dense in a standard layout; :func:`unsupported` says why a parameter list is not such (the
optimizers then fall back to :data:`FALLBACK` under ``'auto'`` and raise for an explicit name).
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import torch

IMPLS = ("reference", "foreach", "cpp", "cuda", "triton")
AUTO_ORDER = {"cuda": ("cuda", "triton", "foreach"), "cpu": ("cpp", "reference")}
FUSED = ("cpp", "cuda", "triton")
FALLBACK = {"cuda": "foreach", "cpu": "reference"}
UNIVERSAL = "reference"  # runs any parameter list (sparse, any dtype or layout) on any device
FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_MODULES = {
    "reference": ".reference",
    "foreach": ".foreach",
    "cpp": ".cpp",
    "cuda": ".cuda",
    "triton": ".triton",
}


class ImplUnavailableError(RuntimeError):
    """An explicitly requested implementation cannot run on this machine/device."""


@functools.cache
def _load(name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(_MODULES[name], __name__), ""
    except ImportError as exc:  # the native module or triton is not installed
        return None, f"{type(exc).__name__}: {exc}"


def availability(name: str, device: torch.device | str) -> tuple[bool, str]:
    """Whether implementation ``name`` can run on ``device``, and if not, why (cached)."""
    if name not in IMPLS:
        raise ValueError(f"unknown impl {name!r}; valid: 'auto', " + ", ".join(map(repr, IMPLS)))
    return _availability(name, torch.device(device))


@functools.cache
def _availability(name: str, device: torch.device) -> tuple[bool, str]:
    mod, why = _load(name)
    if mod is None:
        return False, why
    return mod.is_available(device)


def available_impls(device: torch.device | str) -> list[str]:
    """Names of the implementations that can run on ``device``."""
    return [n for n in IMPLS if availability(n, device)[0]]


def resolve(impl: str, device: torch.device | str) -> str:
    """Turn ``impl`` ('auto' or a name) into a concrete, available implementation name."""
    dev = torch.device(device)
    if impl == "auto":
        for name in AUTO_ORDER.get(dev.type, ("foreach",)):
            if availability(name, dev)[0]:
                return name
        return "reference"
    ok, why = availability(impl, dev)
    if not ok:
        raise ImplUnavailableError(
            f"impl={impl!r} is not available on device {dev}: {why}. "
            f"Available here: {', '.join(available_impls(dev))} (or impl='auto')."
        )
    return impl


def _standard_dense(t: torch.Tensor) -> bool:
    if t.is_contiguous():
        return True
    if t.dim() == 4:
        return t.is_contiguous(memory_format=torch.channels_last)
    return t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d)


def unsupported(impl: str, tensors: list[torch.Tensor], what: str = "parameter") -> str | None:
    """Why the fused ``impl`` cannot take ``tensors`` (one list of a pass), or None if it can.

    Fused kernels need one floating dtype of :data:`FUSED_DTYPES`, one device, dense strided
    tensors in the contiguous or channels-last layout; sparse tensors only run on ``reference``."""
    if impl not in FUSED and impl != "foreach":
        return None
    for i, t in enumerate(tensors):
        name = f"{what} {i} (shape {tuple(t.shape)})"
        if t.layout != torch.strided:
            return f"{name} is {t.layout}; only impl='reference' handles sparse tensors"
        if impl == "foreach":
            continue
        if t.dtype not in FUSED_DTYPES or t.dtype != tensors[0].dtype:
            return (
                f"{name} has dtype {t.dtype}, the fused kernels take one of "
                f"{', '.join(map(str, FUSED_DTYPES))} per param group "
                f"(the group's first: {tensors[0].dtype})"
            )
        if t.device != tensors[0].device:
            return f"{name} is on {t.device}, the group's first parameter on {tensors[0].device}"
        if not _standard_dense(t):
            return (
                f"{name} has strides {t.stride()}: not dense in the contiguous or channels-last "
                "layout (e.g. a transposed view)"
            )
    return None


def get_ops(impl: str, device: torch.device | str) -> ModuleType:
    """The module implementing the passes for ``impl`` on ``device`` (after :func:`resolve`)."""
    mod, why = _load(resolve(impl, device))
    if mod is None:  # resolve() checked availability, so only a race could get here
        raise ImplUnavailableError(why)
    return mod
