"""One rounding order: given the same norm, every implementation's per-element passes are
bit-identical to ``reference`` (``csrc/common/formulas.h``'s order, docs/spec.md §3).

``perturb`` with ``inv_scale != 1`` and ``adaptive``, ``sgd_step`` with every option, fp32 and fp64,
compared with ``torch.equal`` (no tolerance).  CPU: ``foreach``, ``cpp`` and ``triton`` in its
interpreter; GPU (marker ``gpu``): ``foreach``, ``cuda`` and ``triton`` against ``reference`` run on
the same GPU.  The one exception is stated where it is tested: Triton's CPU interpreter evaluates
``tl.fma`` with two roundings (numpy has no fused multiply-add), so there the ``sgd_step`` options
whose reference operation is an ``add(..., alpha=)`` are one rounding away, not bit-identical.
"""

from __future__ import annotations

import pytest
import torch

from focalsam_fast import kernels
from focalsam_fast.kernels import reference

DTYPES = [torch.float32, torch.float64]
SHAPES = [(3, 5), (1000,), (0,), (7, 3, 3, 3), (2049,), (1,), (64, 33)]
CASES = [("foreach", "cpu"), ("cpp", "cpu"), ("triton", "cpu")] + [
    pytest.param(impl, "cuda", marks=pytest.mark.gpu) for impl in ("foreach", "cuda", "triton")
]

# sgd_step options; the second element says whether the reference computes it without any
# ``add(..., alpha=a)`` with a != 1 (a fused multiply-add), i.e. whether the interpreter matches it too
SGD_CASES = {
    "momentum-lr-tensor": (
        dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, lr_tensor=True),
        True,
    ),
    "momentum-dampening-wd-nesterov": (
        dict(momentum=0.9, dampening=0.1, weight_decay=5e-3, nesterov=True, maximize=False, lr_tensor=False),
        False,
    ),
    "maximize-wd-lr-tensor": (
        dict(momentum=0.8, dampening=0.2, weight_decay=1e-2, nesterov=False, maximize=True, lr_tensor=True),
        False,
    ),
    "plain": (
        dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, lr_tensor=False),
        False,
    ),
}


def _ops(impl: str, device: str):
    ok, why = kernels.availability(impl, device)
    if not ok:
        pytest.skip(f"impl {impl!r} does not run on {device} here: {why}")
    return kernels.get_ops(impl, device)


def _interpreted(impl: str, device: str) -> bool:
    return impl == "triton" and device == "cpu"


def _rand(dtype: torch.dtype, device: str) -> list[torch.Tensor]:
    return [torch.randn(s, dtype=dtype, device=device) for s in SHAPES]


def _assert_bitwise(got: list[torch.Tensor], want: list[torch.Tensor], what: str) -> None:
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if not torch.equal(a, b):
            diff = (a != b).sum().item()
            raise AssertionError(
                f"{what}: tensor {i} differs from reference in {diff} of {a.numel()} "
                f"elements (max |diff| {(a - b).abs().max().item():.3g})"
            )


@pytest.mark.parametrize(("impl", "device"), CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("hyper_as_tensors", [False, True], ids=["floats", "tensors"])
def test_perturb_is_bit_identical_to_reference(
    impl: str, device: str, dtype: torch.dtype, adaptive: bool, hyper_as_tensors: bool, seed: int
) -> None:
    ops = _ops(impl, device)
    params, grads = _rand(dtype, device), _rand(dtype, device)
    acc = reference.acc_dtype(dtype)
    inv_scale = 0.37 + torch.rand(()).item()  # not a power of two: every product rounds
    norm = reference.sq_norm(grads, params if adaptive else None).sqrt() * inv_scale
    rho = 0.05 + torch.rand(()).item()
    if hyper_as_tensors:
        rho, inv_scale = (torch.tensor(v, dtype=acc, device=device) for v in (rho, inv_scale))
    want = [torch.empty_like(p) for p in params]
    reference.perturb(params, grads, want, norm, rho, adaptive, inv_scale)
    got = [torch.empty_like(p) for p in params]
    ops.perturb(params, grads, got, norm, rho, adaptive, inv_scale)
    assert any(not torch.equal(w, p) for w, p in zip(want, params)), "the perturbation moved nothing"
    _assert_bitwise(got, want, f"{impl}.perturb")


@pytest.mark.parametrize(("impl", "device"), CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("first_step", [False, True])
@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_step_is_bit_identical_to_reference(
    impl: str, device: str, dtype: torch.dtype, first_step: bool, case: str, seed: int
) -> None:
    ops = _ops(impl, device)
    opts, fma_free = SGD_CASES[case]
    opts = dict(opts)
    lr: float | torch.Tensor = 0.01 + 0.1 * torch.rand(()).item()
    if opts.pop("lr_tensor"):
        lr = torch.tensor(lr, dtype=reference.acc_dtype(dtype), device=device)
    params, grads, grads2, bufs = (_rand(dtype, device) for _ in range(4))
    want_p, want_b = [p.clone() for p in params], [b.clone() for b in bufs]
    reference.sgd_step(want_p, grads, grads2, want_b, lr=lr, first_step=first_step, **opts)
    got_p, got_b = [p.clone() for p in params], [b.clone() for b in bufs]
    ops.sgd_step(got_p, grads, grads2, got_b, lr=lr, first_step=first_step, **opts)
    if _interpreted(impl, device) and not fma_free:
        # the interpreter's tl.fma rounds twice: a few roundings of O(1) operands away (absolute:
        # an update that cancels to ~0 keeps them)
        eps = torch.finfo(dtype).eps
        for got, want in ((got_p, want_p), (got_b, want_b)):
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, rtol=4 * eps, atol=16 * eps)
        return
    _assert_bitwise(got_p, want_p, f"{impl}.sgd_step params")
    if opts["momentum"] != 0:
        _assert_bitwise(got_b, want_b, f"{impl}.sgd_step momentum buffers")
