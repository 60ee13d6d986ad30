"""Triton passes under AMP: ``sgd_step(found_inf=...)``, ``perturb`` with a non-finite norm and
``focal_loss(grad_scale=...)``, against ``focalsam_fast.kernels.reference`` on fresh random inputs.

* a non-zero ``found_inf`` (read by the kernel) leaves params and momentum buffers bitwise
  unchanged; ``found_inf = 0`` is bitwise the same step as no flag;
* a NaN / inf norm (an overflowed scaled gradient) gives ``out == params`` bitwise, even where the
  gradient itself is inf or NaN;
* ``grad_scale`` multiplies the gradients in fp32 before rounding, so fp16 gradients scaled by
  2^16 match the fp32 reference scaled and then rounded (the old order flushed small ones to 0).
"""

from __future__ import annotations

import importlib

import pytest
import torch

pytest.importorskip("triton")

from focalsam_fast.kernels import reference as ref
from focalsam_fast.testing import assert_focal_loss_close, tolerances

tk = importlib.import_module("focalsam_fast.kernels.triton")
mt = importlib.import_module("focalsam_fast.kernels.triton.multi_tensor")

SHAPES = [(3, 5), (1000,), (0,), (7, 3, 3, 3), (2049,), (1,)]
INF = float("inf")
NAN = float("nan")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> torch.device:
    """The device under test; in the interpreter, 512-element chunks so tensors span several."""
    dev = torch.device(request.param)
    ok, why = tk.is_available(dev)
    if not ok:
        pytest.skip(why)
    monkeypatch.setattr(mt, "BLOCK_INTERPRET", 512)
    return dev


def _rand(dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    return [torch.randn(s, dtype=dtype, device=device) for s in SHAPES]


def _clone(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.clone() for t in tensors]


def _assert_bitwise(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    for a, e in zip(actual, expected, strict=True):
        assert torch.equal(a, e)


# --------------------------------------------------------------------------- sgd_step found_inf

SGD_KW = [
    dict(momentum=0.9, dampening=0.1, weight_decay=5e-4, nesterov=False, maximize=False, first_step=False),
    dict(momentum=0.9, dampening=0.0, weight_decay=1e-3, nesterov=True, maximize=True, first_step=True),
    dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_step=False),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("kw", SGD_KW)
@pytest.mark.parametrize("flag", [1.0, INF, NAN])
def test_found_inf_skips_the_whole_step(
    device: torch.device, dtype: torch.dtype, kw: dict, flag: float
) -> None:
    params, grads, grads2, bufs = (_rand(dtype, device) for _ in range(4))
    saved_params, saved_bufs = _clone(params), _clone(bufs)
    found_inf = torch.full((1,), flag, device=device)
    tk.sgd_step(params, grads, grads2, bufs, lr=torch.tensor(0.1, device=device), found_inf=found_inf, **kw)
    _assert_bitwise(params, saved_params)
    _assert_bitwise(bufs, saved_bufs)
    ref.sgd_step(saved_params, grads, grads2, saved_bufs, lr=0.1, found_inf=found_inf, **kw)  # spec agrees
    _assert_bitwise(params, saved_params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", SGD_KW)
def test_found_inf_zero_is_the_step_without_a_flag(
    device: torch.device, dtype: torch.dtype, kw: dict
) -> None:
    params, grads, grads2, bufs = (_rand(dtype, device) for _ in range(4))
    flagged, flagged_bufs = _clone(params), _clone(bufs)
    expected, expected_bufs = _clone(params), _clone(bufs)
    zero = torch.zeros(1, device=device)
    tk.sgd_step(params, grads, grads2, bufs, lr=0.05, **kw)
    tk.sgd_step(flagged, grads, grads2, flagged_bufs, lr=0.05, found_inf=zero, **kw)
    _assert_bitwise(flagged, params)
    _assert_bitwise(flagged_bufs, bufs)
    ref.sgd_step(expected, grads, grads2, expected_bufs, lr=0.05, found_inf=zero, **kw)
    tol = tolerances(dtype)
    if dtype == torch.float32:  # an update cancelling to ~0 keeps its operands' rounding error
        operands = [t for t in expected + grads + grads2 + bufs if t.numel()]
        tol["atol"] = tol["rtol"] * max(float(t.abs().max()) for t in operands)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p, e, **tol)


def test_found_inf_must_be_one_float32_element(device: torch.device) -> None:
    params, grads = _rand(torch.float32, device), _rand(torch.float32, device)
    kw = dict(
        lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_step=True
    )
    with pytest.raises(ValueError, match=r"float32 tensor, got shape \(2,\), dtype torch.float32$"):
        tk.sgd_step(params, grads, None, [], found_inf=torch.zeros(2, device=device), **kw)
    with pytest.raises(ValueError, match=r"got shape \(1,\), dtype torch.float64$"):
        tk.sgd_step(
            params, grads, None, [], found_inf=torch.zeros(1, dtype=torch.float64, device=device), **kw
        )
    with pytest.raises(ValueError, match="found_inf is on meta but the params are on"):
        tk.sgd_step(params, grads, None, [], found_inf=torch.zeros(1, device="meta"), **kw)


# --------------------------------------------------------------------------- perturb, non-finite norm


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("norm_value", [NAN, INF, -INF])
def test_perturb_with_a_non_finite_norm_copies_the_weights(
    device: torch.device, dtype: torch.dtype, adaptive: bool, norm_value: float
) -> None:
    params, grads = _rand(dtype, device), _rand(dtype, device)
    grads[1][::7] = INF  # the overflowed gradient that made the norm infinite
    grads[4][::5] = NAN
    norm = torch.tensor(norm_value, device=device)
    out = [torch.full_like(p, 3.0) for p in params]
    want = [torch.empty_like(p) for p in params]
    inv_scale = torch.tensor(2.0**-16, device=device)
    tk.perturb(params, grads, out, norm, 0.05, adaptive=adaptive, inv_scale=inv_scale)
    ref.perturb(params, grads, want, norm, 0.05, adaptive=adaptive, inv_scale=2.0**-16)
    _assert_bitwise(out, params)
    _assert_bitwise(want, params)


def test_perturb_with_a_finite_norm_still_moves_the_weights(device: torch.device) -> None:
    """The finiteness test does not catch large finite norms (float64 norm above the fp32 range)."""
    params, grads = _rand(torch.float64, device), _rand(torch.float64, device)
    norm = torch.tensor(1e300, dtype=torch.float64, device=device)
    out, want = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    tk.perturb(params, grads, out, norm, 1e290)
    ref.perturb(params, grads, want, norm, 1e290)
    assert not torch.equal(out[1], params[1])
    for o, w in zip(out, want, strict=True):
        torch.testing.assert_close(o, w, **tolerances(torch.float64))


# --------------------------------------------------------------------------- focal_loss grad_scale


def _tables(n_cls: int, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """Logit-adjusted CE tables with random class priors and Focal-SAM coefficients."""
    prior = torch.rand(n_cls, dtype=dtype, device=device) + 0.01
    prior = prior / prior.sum()
    return dict(
        coeff=0.8 * (1 - prior) ** 2,
        scale=torch.rand(n_cls, dtype=dtype, device=device) + 0.5,
        bias=torch.log(prior),
        margin=torch.zeros(n_cls, dtype=dtype, device=device),
    )


@pytest.mark.parametrize("as_tensor", [False, True])
def test_grad_scale_fp16_matches_fp32_reference_scaled_then_rounded(
    device: torch.device, as_tensor: bool
) -> None:
    """fp16 logits, loss scale 2^16: gradients equal round_fp16(fp32 reference * 2^16) to one fp16
    rounding (rtol = fp16 eps, atol = the smallest fp16 subnormal)."""
    batch, n_cls = 8, 1000
    logits = (4 * torch.randn(batch, n_cls, device=device)).half()
    targets = torch.randint(0, n_cls, (batch,), device=device)
    tables = _tables(n_cls, torch.float32, device)
    sigma = 2.0**16
    got = tk.focal_loss(
        logits, targets, **tables, grad_scale=torch.tensor([sigma], device=device) if as_tensor else sigma
    )
    exact = ref.focal_loss(logits.float(), targets, **tables)
    rounded_first = ref.focal_loss(logits, targets, **tables)  # fp16 gradients, scaled after rounding
    tol = dict(rtol=torch.finfo(torch.float16).eps, atol=2.0**-24)
    torch.testing.assert_close(got[0], exact[0].half(), **tol)  # losses are not scaled
    for g, e, r in zip(got[1:], exact[1:], rounded_first[1:], strict=True):
        assert g.dtype == torch.float16
        want = (e * sigma).half()
        torch.testing.assert_close(g, want, **tol)
        flushed = (r.float() * sigma == 0) & (want != 0)
        assert flushed.sum() > 100, "inputs too easy: rounding before scaling would pass"
        assert (g[flushed] != 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad_scale", ["float", "tensor", "float64 tensor"])
def test_grad_scale_against_the_reference(device: torch.device, dtype: torch.dtype, grad_scale: str) -> None:
    logits = 3 * torch.randn(6, 37, dtype=dtype, device=device)
    targets = torch.randint(0, 37, (6,), device=device)
    tables = _tables(37, dtype, device)
    weight = torch.rand(37, dtype=dtype, device=device) + 0.5
    value = 1024.0 * (1 + torch.rand(()).item())  # not a power of two: the product is rounded
    sigma = {
        "float": value,
        "tensor": torch.tensor(value, device=device),
        "float64 tensor": torch.tensor([value], dtype=torch.float64, device=device),
    }[grad_scale]
    got = tk.focal_loss(logits, targets, **tables, weight=weight, grad_scale=sigma)
    want = ref.focal_loss(logits, targets, **tables, weight=weight, grad_scale=sigma)
    assert_focal_loss_close(got, want, scale=value)
    unscaled = tk.focal_loss(logits, targets, **tables, weight=weight)
    one = tk.focal_loss(logits, targets, **tables, weight=weight, grad_scale=1.0)
    _assert_bitwise(list(one), list(unscaled))  # grad_scale=1 is bitwise no scale


def test_grad_scale_must_be_one_element(device: torch.device) -> None:
    logits, targets = torch.randn(2, 5, device=device), torch.randint(0, 5, (2,), device=device)
    tables = _tables(5, torch.float32, device)
    msg = r"^grad_scale must be a float or a one-element tensor, got shape \(2,\)$"
    with pytest.raises(ValueError, match=msg):
        tk.focal_loss(logits, targets, **tables, grad_scale=torch.ones(2, device=device))
