"""Native (C++ / CUDA) multi-tensor passes, wrapped as ``focalsam::`` custom ops.

The compiled modules ``focalsam_fast._C_cpu`` (OpenMP) and ``focalsam_fast._C_cuda`` are
torch-free: they take data pointers, element counts and dtype codes (and, on CUDA, the device
index and the current stream).  This module

* loads them (:func:`load`, raising :class:`ImportError` with build instructions when missing),
* validates tensors (dtype, device, shape, layout) and turns them into pointers,
* registers one ``torch.library.custom_op`` per pass, with a fake (meta) kernel, so that
  ``torch.compile(fullgraph=True)`` traces callers and ``torch.library.opcheck`` passes,
* exposes the passes with the signatures of :mod:`focalsam_fast.kernels.reference` (eager
  no-grad calls skip the op dispatch, see :func:`_eager`).

Each op dispatches on the device of its first tensor: CPU tensors run ``_C_cpu`` with
``torch.get_num_threads()`` OpenMP threads, CUDA tensors run ``_C_cuda`` on
``torch.cuda.current_stream()`` without synchronising the host.

Hyper-parameters that may be floats or tensors (``norm``, ``rho``, ``inv_scale``, ``lr``,
``grad_scale``) are passed to the ops as a pair ``(tensor or None, float)``; a tensor is read by the
kernel itself, so device tensors need no host sync (so is ``sgd_step``'s ``found_inf``).  Dense
tensors in ``torch.contiguous_format`` or ``channels_last`` (3-D: ``channels_last_3d``) are used in
place; other read-only inputs are copied to a dense layout, other mutated tensors raise
:class:`ValueError`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from .reference import acc_dtype

_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}
_LOADED: dict[str, ModuleType] = {}


def load(kind: str) -> ModuleType:
    """The native module ``focalsam_fast._C_<kind>`` (``kind`` is ``"cpu"`` or ``"cuda"``)."""
    if kind not in _LOADED:
        name = f"focalsam_fast._C_{kind}"
        try:
            _LOADED[kind] = importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(
                f"{name} is not built ({exc}). Build the native modules with "
                "`pip install -e . --no-build-isolation` (the CUDA one needs nvcc; see docs/build.md)."
            ) from exc
    return _LOADED[kind]


def _backend(device: torch.device) -> tuple[ModuleType, dict[str, Any]]:
    """Native module and launch arguments (threads, or CUDA device + stream) for ``device``."""
    if device.type == "cpu":
        return load("cpu"), {"num_threads": torch.get_num_threads()}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        stream = torch.cuda.current_stream(index).cuda_stream
        return load("cuda"), {"device": index, "stream": stream}
    raise ValueError(f"no native kernels for device {device}; use impl='reference' or 'foreach'")


def _dtype_code(dtype: torch.dtype, what: str) -> int:
    code = _DTYPE_CODES.get(dtype)
    if code is None:
        raise TypeError(
            f"{what} has dtype {dtype}; the native kernels support float32, float64, float16 and bfloat16"
        )
    return code


def _is_dense(t: Tensor) -> bool:
    """Non-overlapping and dense in a layout whose flat storage order the kernels can walk."""
    if t.is_contiguous():
        return True
    if t.dim() == 4:
        return t.is_contiguous(memory_format=torch.channels_last)
    if t.dim() == 5:
        return t.is_contiguous(memory_format=torch.channels_last_3d)
    return False


def _prepare(
    name: str,
    tensors: Sequence[Tensor],
    dtype: torch.dtype,
    device: torch.device,
    *,
    like: Sequence[Tensor] | None = None,
    mutated: bool = False,
) -> list[Tensor]:
    """Checks ``tensors`` and returns them, read-only inputs possibly copied to a dense layout.

    With ``like``, tensor ``i`` must have the shape of ``like[i]`` and gets its memory layout (the
    kernels walk all lists of an element-wise pass in the same flat order).  The caller keeps the
    returned list alive until the native call is issued (a copy would otherwise be freed, and its
    memory reused, before the kernel reads it).
    """
    if like is not None and len(tensors) != len(like):
        raise ValueError(f"len({name}) = {len(tensors)} but the first list has {len(like)} tensors")
    index = device.index if device.type == "cuda" else -1
    out = list(tensors)
    for i, t in enumerate(out):
        ref = None if like is None else like[i]
        # fast path (a few attribute reads): the right dtype/device, contiguous like its reference
        if (
            isinstance(t, Tensor)
            and t.layout is torch.strided
            and t.dtype is dtype
            and t.get_device() == index
            and t.is_contiguous()
            and (ref is None or (ref.is_contiguous() and t.shape == ref.shape))
        ):
            continue
        out[i] = _checked(f"{name}[{i}]", t, dtype, device, ref, mutated)
    return out


def _checked(
    what: str, t: Tensor, dtype: torch.dtype, device: torch.device, ref: Tensor | None, mutated: bool
) -> Tensor:
    """Full check of one tensor off the fast path of :func:`_prepare`; may return a dense copy."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{what} is a {type(t).__name__}, not a Tensor")
    if t.layout is not torch.strided:
        raise ValueError(
            f"{what} has layout {t.layout}; the native kernels take dense (torch.strided) "
            "tensors (use impl='reference' for sparse ones)"
        )
    if t.dtype != dtype:
        raise TypeError(
            f"{what} has dtype {t.dtype} but the first tensor has {dtype}; "
            "all tensors of one call must share a dtype"
        )
    if t.device != device:
        raise ValueError(f"{what} is on {t.device} but the first tensor is on {device}")
    if ref is not None and t.shape != ref.shape:
        raise ValueError(f"{what} has shape {tuple(t.shape)} but expected {tuple(ref.shape)}")
    if _is_dense(t) and (ref is None or t.numel() <= 1 or t.stride() == ref.stride()):
        return t
    if mutated:
        raise ValueError(
            f"{what} (shape {tuple(t.shape)}, strides {t.stride()}) is updated in place but is "
            "not dense in the layout of its parameter; pass contiguous tensors"
        )
    return t.contiguous() if ref is None else torch.empty_like(ref).copy_(t)


def _ptrs(tensors: list[Tensor]) -> list[int]:
    return [t.data_ptr() for t in tensors]


def _scalar(
    x: Tensor | None, value: float, dtype: torch.dtype, device: torch.device, what: str
) -> tuple[int, float, Tensor | None]:
    """(pointer, value, tensor) for a hyper-parameter given as a tensor or a float; the caller keeps
    the returned tensor (the converted copy the pointer refers to) alive across the native call."""
    if x is None:
        return 0, float(value), None
    if x.numel() != 1:
        raise ValueError(f"{what} must be a float or a one-element tensor, got shape {tuple(x.shape)}")
    t = x.detach().to(device=device, dtype=dtype).reshape(())
    if not t.is_contiguous():
        t = t.contiguous()
    return t.data_ptr(), 0.0, t


# ---------------------------------------------------------------------------------------------
# custom ops


def _sq_norm(grads: list[Tensor], params: list[Tensor]) -> Tensor:
    r""":math:`\sum_t \lVert a_t \odot g_t \rVert^2`, ``a_t = |p_t|`` (``params`` non-empty) or 1."""
    dtype, device = grads[0].dtype, grads[0].device
    code = _dtype_code(dtype, "grads[0]")
    gs = _prepare("grads", grads, dtype, device)
    ps = _prepare("params", params, dtype, device, like=gs) if params else []
    numels = [g.numel() for g in gs]
    out = torch.empty((), dtype=acc_dtype(dtype), device=device)
    mod, launch = _backend(device)
    if device.type == "cuda":
        size = mod.workspace_size(numels)
        ws = torch.empty(max(size, 1), dtype=torch.float64, device=device)
        mod.sq_norm(code, _ptrs(gs), _ptrs(ps), numels, out.data_ptr(), ws.data_ptr(), size, **launch)
    else:
        mod.sq_norm(code, _ptrs(gs), _ptrs(ps), numels, out.data_ptr(), **launch)
    return out


sq_norm_op = torch.library.custom_op("focalsam::sq_norm", _sq_norm, mutates_args=())


@sq_norm_op.register_fake
def _(grads: list[Tensor], params: list[Tensor]) -> Tensor:
    return grads[0].new_empty((), dtype=acc_dtype(grads[0].dtype))


def _perturb(
    params: list[Tensor],
    grads: list[Tensor],
    out: list[Tensor],
    norm: Tensor | None,
    norm_value: float,
    rho: Tensor | None,
    rho_value: float,
    inv_scale: Tensor | None,
    inv_scale_value: float,
    adaptive: bool,
) -> None:
    r"""``out_t = p_t + (p_t^2 if adaptive) (g_t s)``,
    :math:`s = \rho / (\lVert h\rVert\iota + 10^{-12})\,\iota`.

    Each of norm / rho / inv_scale is the tensor when given, else the float."""
    dtype, device = params[0].dtype, params[0].device
    code = _dtype_code(dtype, "params[0]")
    ps = _prepare("params", params, dtype, device)
    gs = _prepare("grads", grads, dtype, device, like=ps)
    os_ = _prepare("out", out, dtype, device, like=ps, mutated=True)
    a = acc_dtype(dtype)
    scalars = [
        _scalar(norm, norm_value, a, device, "norm"),
        _scalar(rho, rho_value, a, device, "rho"),
        _scalar(inv_scale, inv_scale_value, a, device, "inv_scale"),
    ]
    mod, launch = _backend(device)
    mod.perturb(
        code,
        _ptrs(ps),
        _ptrs(gs),
        _ptrs(os_),
        [p.numel() for p in ps],
        *[v for s in scalars for v in s[:2]],
        adaptive,
        **launch,
    )


perturb_op = torch.library.custom_op("focalsam::perturb", _perturb, mutates_args=("out",))


def _sgd_step(
    params: list[Tensor],
    grads: list[Tensor],
    grads2: list[Tensor],
    momentum_buffers: list[Tensor],
    lr: Tensor | None,
    lr_value: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    found_inf: Tensor | None = None,
) -> None:
    """``g = g1 + g2`` (``grads2`` empty: ``g1``) and one ``torch.optim.SGD`` update, in place.

    ``momentum_buffers`` is ignored (and may be empty) when ``momentum == 0``.  A non-zero
    ``found_inf`` (one element, read as float32 by the kernel) skips the step: nothing is written."""
    dtype, device = params[0].dtype, params[0].device
    code = _dtype_code(dtype, "params[0]")
    ps = _prepare("params", params, dtype, device, mutated=True)
    gs = _prepare("grads", grads, dtype, device, like=ps)
    g2s = _prepare("grads2", grads2, dtype, device, like=ps) if grads2 else []
    bs = (
        _prepare("momentum_buffers", momentum_buffers, dtype, device, like=ps, mutated=True)
        if momentum != 0
        else []
    )
    lr_arg = _scalar(lr, lr_value, acc_dtype(dtype), device, "lr")
    inf_arg = _scalar(found_inf, 0.0, torch.float32, device, "found_inf")
    mod, launch = _backend(device)
    mod.sgd_step(
        code,
        _ptrs(ps),
        _ptrs(gs),
        _ptrs(g2s),
        _ptrs(bs),
        [p.numel() for p in ps],
        lr_arg[0],
        lr_arg[1],
        momentum,
        dampening,
        weight_decay,
        nesterov,
        maximize,
        first_step,
        inf_arg[0],
        **launch,
    )


sgd_step_op = torch.library.custom_op(
    "focalsam::sgd_step", _sgd_step, mutates_args=("params", "momentum_buffers")
)


def _focal_loss(
    logits: Tensor,
    targets: Tensor,
    coeff: Tensor,
    scale: Tensor,
    bias: Tensor,
    margin: Tensor,
    weight: Tensor | None,
    grad_scale: Tensor | None = None,
    grad_scale_value: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample losses and the two weighted logit gradients, see :func:`reference.focal_loss`.

    Both gradients are multiplied by ``grad_scale`` (the tensor when given, else the float) in the
    accumulation dtype before rounding; labels outside ``[0, C)`` give NaN rows."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [B, C], got shape {tuple(logits.shape)}")
    rows, cols = logits.shape
    device = logits.device
    code = _dtype_code(logits.dtype, "logits")
    if targets.shape != (rows,):
        raise ValueError(f"targets must have shape ({rows},) to match logits, got {tuple(targets.shape)}")
    if targets.is_floating_point() or targets.is_complex():
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    a = acc_dtype(logits.dtype)
    tables = []
    named = (("coeff", coeff), ("scale", scale), ("bias", bias), ("margin", margin), ("weight", weight))
    for name, t in named:
        if t is None:
            tables.append(None)
            continue
        if t.shape != (cols,):
            raise ValueError(f"{name} must have shape ({cols},) (one entry per class), got {tuple(t.shape)}")
        tables.append(t.detach().to(device=device, dtype=a).contiguous())
    z = logits.detach().contiguous()
    y = targets.to(device=device, dtype=torch.int64).contiguous()
    losses = z.new_empty((rows,))
    grad_a = torch.empty_like(z)
    grad_b = torch.empty_like(z)
    ptr = [0 if t is None else t.data_ptr() for t in tables]
    gs_arg = _scalar(grad_scale, grad_scale_value, a, device, "grad_scale")
    mod, launch = _backend(device)
    mod.focal_loss(
        code,
        z.data_ptr(),
        y.data_ptr(),
        *ptr,
        rows,
        cols,
        losses.data_ptr(),
        grad_a.data_ptr(),
        grad_b.data_ptr(),
        gs_arg[0],
        gs_arg[1],
        **launch,
    )
    return losses, grad_a, grad_b


focal_loss_op = torch.library.custom_op("focalsam::focal_loss", _focal_loss, mutates_args=())


@focal_loss_op.register_fake
def _(
    logits: Tensor,
    targets: Tensor,
    coeff: Tensor,
    scale: Tensor,
    bias: Tensor,
    margin: Tensor,
    weight: Tensor | None,
    grad_scale: Tensor | None = None,
    grad_scale_value: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    rows, cols = logits.shape
    return logits.new_empty((rows,)), logits.new_empty((rows, cols)), logits.new_empty((rows, cols))


# ---------------------------------------------------------------------------------------------
# public functions (the signatures of reference.py)


def _eager() -> bool:
    """True in eager code under ``torch.no_grad()`` (the optimizers' case): the public functions
    then call the implementations directly and bump the version counters of mutated tensors in
    one call, which saves the custom-op dispatch (its cost per pass: docs/benchmarks/README.md).
    Traced code and grad mode go through the ``focalsam::`` ops."""
    return not torch.is_grad_enabled() and not torch.compiler.is_compiling()


def _split(x: float | Tensor) -> tuple[Tensor | None, float]:
    return (x, 0.0) if isinstance(x, Tensor) else (None, float(x))


def sq_norm(grads: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
    r""":math:`\sum_t \lVert a_t \odot g_t \rVert_2^2` in one deterministic pass (see reference)."""
    if not grads:
        raise ValueError("sq_norm needs at least one gradient tensor")
    return (_sq_norm if _eager() else sq_norm_op)(list(grads), [] if params is None else list(params))


def perturb(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    out: Sequence[Tensor],
    norm: float | Tensor,
    rho: float | Tensor,
    adaptive: bool = False,
    inv_scale: float | Tensor = 1.0,
) -> None:
    """``out = p + (p * p if adaptive) * (g * s)`` in one pass, see :func:`reference.perturb`."""
    if not params:
        return
    args = (list(params), list(grads), list(out), *_split(norm), *_split(rho), *_split(inv_scale), adaptive)
    if _eager():
        _perturb(*args)
        torch.autograd.graph.increment_version(args[2])
    else:
        perturb_op(*args)


def sgd_step(
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
    """Gradient combine + ``torch.optim.SGD`` update in one pass, see :func:`reference.sgd_step`;
    nothing is written when ``found_inf`` (one-element float32 tensor) is non-zero."""
    if not params:
        return
    args = (
        list(params),
        list(grads),
        [] if grads2 is None else list(grads2),
        list(momentum_buffers) if momentum != 0 else [],
        *_split(lr),
        float(momentum),
        float(dampening),
        float(weight_decay),
        nesterov,
        maximize,
        first_step,
        found_inf,
    )
    if _eager():
        _sgd_step(*args)
        torch.autograd.graph.increment_version(args[0] + args[3])
    else:
        sgd_step_op(*args)


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    coeff: Tensor,
    scale: Tensor,
    bias: Tensor,
    margin: Tensor,
    weight: Tensor | None = None,
    grad_scale: float | Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(losses [B], grad_a [B, C], grad_b [B, C])`` in one row-wise pass (:func:`reference.focal_loss`);
    both gradients are multiplied by ``grad_scale`` (None: 1) before rounding to the logits' dtype."""
    scale_args = _split(1.0 if grad_scale is None else grad_scale)
    return (_focal_loss if _eager() else focal_loss_op)(
        logits, targets, coeff, scale, bias, margin, weight, *scale_args
    )
