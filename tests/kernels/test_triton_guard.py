"""The Triton wrappers allocate, upload and launch on their tensors' device, not the current one.

Triton launches on ``torch.cuda.current_device()`` and its current stream; without a guard,
tensors on ``cuda:1`` used while ``cuda:0`` is current ran on the wrong device.  On CPU the guard
is a no-op, so these tests record what the wrappers do: every kernel launch and every plan /
device-scalar lookup happens inside ``device_guard(<the tensors' device>)``, and
``device_guard`` of a CUDA device is ``torch.cuda.device`` of that device.  The two-GPU test runs
the real thing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from torch import Tensor

pytest.importorskip("triton")

from focalsam_fast.kernels import reference as ref
from focalsam_fast.testing import (
    FP32_ATOL,
    FP32_ELEM_RTOL,
    FP32_RTOL,
    assert_focal_loss_close,
    tolerances,
)

tk = importlib.import_module("focalsam_fast.kernels.triton")
guard = importlib.import_module("focalsam_fast.kernels.triton.guard")

# wrapper module -> names it looks up at call time that must run inside the guard
GUARDED = {
    "norm": ("_partials_kernel", "_sum_kernel", "plan"),
    "perturb": ("_perturb_kernel", "plan", "device_scalar"),
    "sgd": ("_sgd_kernel", "plan", "device_scalar"),
    "loss": ("_focal_loss_kernel", "device_scalar"),
}
SHAPES = [(3, 5), (700,), (2, 3, 3, 3)]
ELEM = {"rtol": FP32_ELEM_RTOL, "atol": FP32_ATOL}


def _assert_step_close(got: list[Tensor], want: list[Tensor], operands: list[Tensor]) -> None:
    """fp32 SGD step: relative FP32_RTOL, absolute FP32_RTOL x the largest operand (an update that
    cancels to ~0 keeps its operands' rounding error; as ``_step_tol`` of test_triton.py)."""
    atol = FP32_RTOL * max(float(t.abs().max()) for t in operands)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=FP32_RTOL, atol=atol)


class _Kernel:
    """Stands in for a Triton kernel: records the guarded device at each launch, then launches."""

    def __init__(self, real: Any, name: str, log: Callable[[str], None]) -> None:
        self.real, self.name, self.log = real, name, log

    def __getitem__(self, grid: tuple[int, ...]) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> Any:
            self.log(self.name)
            return self.real[grid](*args, **kwargs)

        return launch


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, torch.device | None]]:
    """``(name, device guarded at the time)`` for every guarded call of every wrapper."""
    active: list[torch.device] = []
    seen: list[tuple[str, torch.device | None]] = []

    def log(name: str) -> None:
        seen.append((name, active[-1] if active else None))

    @contextmanager
    def recording_guard(device: torch.device) -> Iterator[None]:
        active.append(device)
        try:
            yield
        finally:
            active.pop()

    def wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            log(name)
            return fn(*args, **kwargs)

        return call

    for mod_name, names in GUARDED.items():
        mod = importlib.import_module(f"focalsam_fast.kernels.triton.{mod_name}")
        monkeypatch.setattr(mod, "device_guard", recording_guard)
        for name in names:
            real = getattr(mod, name)
            fake = _Kernel(real, name, log) if name.startswith("_") else wrap(real, name)
            monkeypatch.setattr(mod, name, fake)
    return seen


def test_device_guard_makes_the_tensors_cuda_device_current(monkeypatch: pytest.MonkeyPatch) -> None:
    entered: list[torch.device] = []

    class FakeCudaDevice:
        def __init__(self, device: torch.device) -> None:
            entered.append(device)

    monkeypatch.setattr(torch.cuda, "device", FakeCudaDevice)
    cuda1 = torch.device("cuda", 1)
    assert isinstance(guard.device_guard(cuda1), FakeCudaDevice)
    assert entered == [cuda1]
    with guard.device_guard(torch.device("cpu")):  # a no-op on CPU: torch.cuda is not touched
        pass
    assert entered == [cuda1]


def test_every_wrapper_works_inside_the_guard_of_its_tensors_device(
    calls: list[tuple[str, torch.device | None]],
) -> None:
    dev = torch.device("cpu") if tk.INTERPRETED else torch.device("cuda", 0)
    if not tk.is_available(dev)[0]:
        pytest.skip(tk.is_available(dev)[1])
    torch.set_default_device(dev)
    try:
        _run_every_wrapper()
    finally:
        torch.set_default_device(None)
    names = {name for name, _ in calls}
    assert names == {n for ns in GUARDED.values() for n in ns}, names  # every guarded call was seen
    outside = [(name, d) for name, d in calls if d != dev]
    assert not outside, f"called outside device_guard({dev}): {outside}"


def _run_every_wrapper() -> None:
    """Every Triton pass once on the default device, against the reference."""
    params = [torch.randn(s) for s in SHAPES]
    grads = [torch.randn(s) for s in SHAPES]
    out = [torch.empty_like(p) for p in params]
    norm = tk.sq_norm(grads, params).sqrt()
    torch.testing.assert_close(norm, ref.sq_norm(grads, params).sqrt(), **tolerances(torch.float32))
    tk.perturb(params, grads, out, norm, 0.05, inv_scale=torch.tensor(0.5))
    want = [torch.empty_like(p) for p in params]
    ref.perturb(params, grads, want, norm, 0.05, inv_scale=torch.tensor(0.5))
    for o, w in zip(out, want, strict=True):
        torch.testing.assert_close(o, w, **ELEM)
    expected = [p.clone() for p in params]
    bufs, bufs_ref = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    kw = dict(
        lr=0.1,
        momentum=0.9,
        dampening=0.0,
        weight_decay=1e-4,
        nesterov=False,
        maximize=False,
        first_step=True,
        found_inf=torch.zeros(1),
    )
    tk.sgd_step(params, grads, out, bufs, **kw)
    ref.sgd_step(expected, grads, out, bufs_ref, **kw)
    _assert_step_close(params, expected, expected + grads + out)
    logits, targets = torch.randn(4, 30), torch.randint(0, 30, (4,))
    tables = dict(
        coeff=torch.rand(30), scale=torch.rand(30) + 0.5, bias=torch.randn(30), margin=torch.zeros(30)
    )
    got = tk.focal_loss(logits, targets, **tables, grad_scale=8.0)
    assert_focal_loss_close(got, ref.focal_loss(logits, targets, **tables, grad_scale=8.0), scale=8.0)


@pytest.mark.gpu
def test_tensors_on_the_last_gpu_while_the_first_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors on the last GPU with cuda:0 current: every pass enters the real ``torch.cuda.device``
    of the tensors' device, runs there and matches the reference.  The decisive case needs two
    GPUs (cuda:1 tensors, cuda:0 current); on one GPU it checks the real guard end to end."""
    if not tk.is_available(torch.device("cuda"))[0]:
        pytest.skip(tk.is_available(torch.device("cuda"))[1])
    entered: list[torch.device] = []

    class RecordingCudaDevice(torch.cuda.device):
        def __enter__(self) -> None:
            entered.append(torch.device("cuda", self.idx))
            return super().__enter__()

    monkeypatch.setattr(torch.cuda, "device", RecordingCudaDevice)
    torch.cuda.set_device(0)
    dev = torch.device("cuda", torch.cuda.device_count() - 1)
    params = [torch.randn(s, device=dev) for s in SHAPES]
    grads = [torch.randn(s, device=dev) for s in SHAPES]
    norm = tk.sq_norm(grads).sqrt()
    assert norm.device == dev
    torch.testing.assert_close(norm, ref.sq_norm(grads).sqrt(), **tolerances(torch.float32))
    out, want = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    tk.perturb(params, grads, out, norm, 0.05)
    ref.perturb(params, grads, want, norm, 0.05)
    for o, w in zip(out, want, strict=True):
        torch.testing.assert_close(o, w, **ELEM)
    expected = [p.clone() for p in params]
    bufs, bufs_ref = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    kw = dict(
        lr=torch.tensor(0.1, device=dev),
        momentum=0.9,
        dampening=0.0,
        weight_decay=1e-4,
        nesterov=True,
        maximize=False,
        first_step=True,
        found_inf=torch.zeros(1, device=dev),
    )
    tk.sgd_step(params, grads, out, bufs, **kw)
    ref.sgd_step(expected, grads, out, bufs_ref, **kw)
    _assert_step_close(params, expected, expected + grads + out)
    logits, targets = torch.randn(8, 100, device=dev), torch.randint(0, 100, (8,), device=dev)
    tables = dict(
        coeff=torch.rand(100, device=dev),
        scale=torch.ones(100, device=dev),
        bias=torch.randn(100, device=dev),
        margin=torch.zeros(100, device=dev),
    )
    got = tk.focal_loss(logits, targets, **tables, grad_scale=torch.tensor(4.0, device=dev))
    assert_focal_loss_close(got, ref.focal_loss(logits, targets, **tables, grad_scale=4.0), scale=4.0)
    torch.cuda.synchronize(dev)
    assert torch.cuda.current_device() == 0  # the guard restored the current device
    assert entered and set(entered) == {dev}
