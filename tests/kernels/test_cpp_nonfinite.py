"""The C++ kernels on non-finite inputs and under AMP, against :mod:`focalsam_fast.kernels.reference`.

focal_loss: NaN / +inf / -inf logits and labels outside [0, C) follow torch.logsumexp /
torch.softmax (the shared online log-sum-exp merge, csrc/common/logsumexp.h); ``grad_scale``
multiplies the gradients before they are rounded.  sgd_step: a non-zero ``found_inf`` writes
nothing.  perturb: a norm that is not finite gives ``out = p`` bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from focalsam_fast.kernels import reference
from focalsam_fast.testing import (
    FP32_ATOL,
    FP32_ELEM_RTOL,
    FP64_ATOL,
    FP64_RTOL,
    assert_focal_loss_close,
)
from tests.kernels.focal_cases import (
    BATCHES,
    CASES,
    CLASSES,
    INF,
    NAN,
    NAN_GRAD_CASES,
    focal_inputs,
    one_special_per_position,
    special_rows,
)

cpp = pytest.importorskip("focalsam_fast.kernels.cpp", reason="focalsam_fast._C_cpu is not built")
native = cpp.load("cpu")

DTYPES = (torch.float32, torch.float64)
_BITS = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}


def _bits(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Bit patterns (so -0.0 != 0.0 and NaN payloads count)."""
    return [t.view(_BITS[t.dtype]).clone() for t in ts]


def _same_bits(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(_bits(a), _bits(b)))


@pytest.fixture(params=native.available_isas())
def isa(request: pytest.FixtureRequest) -> str:
    """The multi-tensor passes once per instruction set this CPU has."""
    before = native.isa()
    native.set_isa(request.param)
    yield request.param
    native.set_isa(before)


# ---- focal_loss: NaN, +-inf, bad labels ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", CASES)
def test_focal_loss_special_values_match_reference(
    seed: int, dtype: torch.dtype, classes: int, batch: int, case: str
) -> None:
    logits, targets, t = focal_inputs(case, batch, classes, dtype)
    got = cpp.focal_loss(logits, targets, **t)
    assert_focal_loss_close(got, reference.focal_loss(logits, targets, **t), equal_nan=True)
    rows = special_rows(batch)
    others = [i for i in range(batch) if i not in rows]
    if case in NAN_GRAD_CASES:
        assert got[1][rows].isnan().all() and got[2][rows].isnan().all()
    if case in ("bad_label", "nan_first", "nan_middle", "nan_last", "all_neginf"):
        assert got[0][rows].isnan().all()
    for out in got:
        assert out[others].isfinite().all()  # rows without special values are unaffected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", [7, 100, 300])
@pytest.mark.parametrize("value", [NAN, INF], ids=["nan", "two_posinf"])
def test_focal_loss_special_value_at_every_column(
    seed: int, dtype: torch.dtype, classes: int, value: float
) -> None:
    """Row i has the value in column i: every lane of the row reduction starts once with it."""
    logits, targets = one_special_per_position(classes, value, dtype)
    t = {
        "coeff": torch.rand(classes, dtype=dtype),
        "scale": 0.5 + torch.rand(classes, dtype=dtype),
        "bias": torch.randn(classes, dtype=dtype),
        "margin": torch.rand(classes, dtype=dtype),
    }
    got = cpp.focal_loss(logits, targets, **t)
    assert_focal_loss_close(got, reference.focal_loss(logits, targets, **t), equal_nan=True)
    assert got[1].isnan().all() and got[2].isnan().all()
    if value != value:  # NaN
        assert got[0].isnan().all()
    else:  # logsumexp = +inf: loss inf, or NaN where the target holds +inf
        assert (got[0].isinf() | got[0].isnan()).all()


# ---- focal_loss: grad_scale (AMP) ------------------------------------------------------------


def _tables(c: int) -> dict[str, torch.Tensor]:
    return {
        "coeff": torch.rand(c),
        "scale": 0.5 + torch.rand(c),
        "bias": torch.randn(c),
        "margin": torch.rand(c),
    }


def test_focal_loss_grad_scale_keeps_small_fp16_gradients(seed: int) -> None:
    """fp16 logits, loss scale 2^16: each gradient is the fp32 value times the scale, rounded to
    fp16 once (half an fp16 ulp, 2^-11 relative; 2^-25 absolute below the normal range).  Entries
    of about 1 / (B C) = 1.7e-6 are fp16 subnormals: rounding them before scaling loses them."""
    batch, classes, gs = 70, 8142, 2.0**16
    logits, targets = (3 * torch.randn(batch, classes)).half(), torch.randint(0, classes, (batch,))
    t = _tables(classes)
    losses, ga, gb = cpp.focal_loss(logits, targets, **t, grad_scale=gs)
    ref_losses, ref_ga, ref_gb = reference.focal_loss(logits.float(), targets, **t, grad_scale=gs)
    tol = {"rtol": 1e-3, "atol": 2.0**-24}
    torch.testing.assert_close(ga.float(), ref_ga, **tol)
    torch.testing.assert_close(gb.float(), ref_gb, **tol)
    torch.testing.assert_close(losses.float(), ref_losses, rtol=1e-3, atol=0.0)  # losses are not scaled
    assert (ga != 0).sum() >= 0.99 * (ref_ga.abs() >= 2.0**-14).sum()
    # the test discriminates: scaling the rounded unscaled gradient is far off
    unscaled = cpp.focal_loss(logits, targets, **t)
    assert torch.equal(unscaled[0], losses)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(unscaled[1].float() * gs, ref_ga, **tol)
    # the reference at fp16 rounds once as well
    for g, r in zip((ga, gb), reference.focal_loss(logits, targets, **t, grad_scale=gs)[1:]):
        torch.testing.assert_close(g.float(), r.float(), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_focal_loss_grad_scale_matches_reference(seed: int, dtype: torch.dtype) -> None:
    batch, classes = 37, 100
    logits, targets = 3 * torch.randn(batch, classes, dtype=dtype), torch.randint(0, classes, (batch,))
    t = _tables(classes)
    gs = 2.0 ** int(torch.randint(-4, 17, ()))
    as_float = cpp.focal_loss(logits, targets, **t, grad_scale=gs)
    as_tensor = cpp.focal_loss(logits, targets, **t, grad_scale=torch.tensor([gs]))
    ref = reference.focal_loss(logits, targets, **t, grad_scale=gs)
    assert _same_bits(list(as_float), list(as_tensor))
    assert_focal_loss_close(as_float, ref, equal_nan=True, scale=gs)
    plain = cpp.focal_loss(logits, targets, **t)
    assert _same_bits(list(plain), list(cpp.focal_loss(logits, targets, **t, grad_scale=1.0)))


# ---- sgd_step: found_inf ---------------------------------------------------------------------

SGD_OPTIONS = [
    {"momentum": 0.9, "dampening": 0.0, "weight_decay": 5e-4, "nesterov": True, "first_step": False},
    {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.0, "nesterov": False, "first_step": True},
    {"momentum": 0.0, "dampening": 0.0, "weight_decay": 1e-4, "nesterov": False, "first_step": False},
]
SIZES = (1, 7, 0, 65_539, (3, 5, 2, 2))


def _sgd_args(dtype: torch.dtype) -> tuple[list[torch.Tensor], ...]:
    return tuple([torch.randn(s, dtype=dtype) for s in SIZES] for _ in range(4))


@pytest.mark.parametrize("dtype", (*DTYPES, torch.float16))
@pytest.mark.parametrize("options", SGD_OPTIONS)
@pytest.mark.parametrize("flag", [1.0, INF, NAN, -2.0])
@pytest.mark.parametrize("lr_tensor", [False, True])
def test_sgd_step_found_inf_writes_nothing(
    seed: int, isa: str, dtype: torch.dtype, options: dict, flag: float, lr_tensor: bool
) -> None:
    params, grads, grads2, bufs = _sgd_args(dtype)
    params[1][0] = -0.0
    before_p, before_b = _bits(params), _bits(bufs)
    lr = torch.tensor(0.1, dtype=dtype) if lr_tensor else 0.1
    cpp.sgd_step(
        params, grads, grads2, bufs, lr=lr, maximize=False, found_inf=torch.tensor([flag]), **options
    )
    assert all(torch.equal(a, b) for a, b in zip(_bits(params), before_p))
    assert all(torch.equal(a, b) for a, b in zip(_bits(bufs), before_b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_sgd_step_found_inf_zero_is_a_normal_step(
    seed: int, isa: str, dtype: torch.dtype, options: dict
) -> None:
    params, grads, grads2, bufs = _sgd_args(dtype)
    initial = [p.clone() for p in params]
    p2, b2 = [p.clone() for p in params], [b.clone() for b in bufs]
    ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
    kw = {"lr": 0.05, "maximize": False, **options}
    cpp.sgd_step(params, grads, grads2, bufs, **kw)
    cpp.sgd_step(p2, grads, grads2, b2, found_inf=torch.zeros(()), **kw)
    assert _same_bits(params, p2) and _same_bits(bufs, b2)
    reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
    assert not any(torch.equal(p, q) for p, q in zip(params, initial) if p.numel())  # the step did write
    elem_tol = (
        {"rtol": FP64_RTOL, "atol": FP64_ATOL}
        if dtype == torch.float64
        else {"rtol": FP32_ELEM_RTOL, "atol": FP32_ATOL}
    )
    torch.testing.assert_close(params, ref_p, **elem_tol)


# ---- perturb: norm not finite ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", (*DTYPES, torch.float16, torch.bfloat16))
@pytest.mark.parametrize("norm", [NAN, INF, -INF])
@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("in_place", [False, True])
def test_perturb_with_non_finite_norm_copies_params(
    seed: int, isa: str, dtype: torch.dtype, norm: float, as_tensor: bool, adaptive: bool, in_place: bool
) -> None:
    sizes = (1, 7, 0, 65_537, (3, 5, 2, 2))
    params = [torch.randn(s, dtype=dtype) for s in sizes]
    grads = [torch.randn(s, dtype=dtype) for s in sizes]
    params[1][0], grads[1][1], grads[3][5] = -0.0, INF, NAN  # an overflowed gradient
    before = _bits(params)
    out = params if in_place else [torch.full_like(p, 7.0) for p in params]
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    n = torch.tensor(norm, dtype=acc) if as_tensor else norm
    cpp.perturb(params, grads, out, n, 0.05, adaptive=adaptive, inv_scale=1 / 1024)
    assert all(torch.equal(a, b) for a, b in zip(_bits(out), before))
    expected = [torch.empty_like(p) for p in params]
    reference.perturb(
        [p.clone() for p in params], grads, expected, n, 0.05, adaptive=adaptive, inv_scale=1 / 1024
    )
    assert _same_bits(expected, out)
