"""The CUDA kernels against :mod:`focalsam_fast.kernels.reference` (run on a GPU box; skipped here)."""

from __future__ import annotations

import itertools

import pytest
import torch

from focalsam_fast.kernels import reference
from focalsam_fast.kernels.reference import acc_dtype as acc
from focalsam_fast.testing import (
    FP32_ATOL,
    FP32_ELEM_RTOL,
    FP64_ATOL,
    FP64_RTOL,
    loss_tolerances,
    tolerances,
)
from tests.kernels import focal_cases

pytestmark = pytest.mark.gpu

# odd sizes, an empty tensor, multi-chunk tensors, an unaligned view (vector loads off)
SIZES = (1, 7, 0, 65_537, 3 * 65_536 + 5, 1_000, (3, 5, 2, 2))
DTYPES = (torch.float32, torch.float64)
LOW = (torch.float16, torch.bfloat16)


@pytest.fixture(scope="module")
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return pytest.importorskip("focalsam_fast.kernels.cuda", reason="focalsam_fast._C_cuda is not built")


def _rand(sizes=SIZES, dtype=torch.float32, unaligned: bool = False) -> list[torch.Tensor]:
    out = []
    for s in sizes:
        t = torch.randn(s, dtype=dtype, device="cuda")
        if unaligned and t.dim() == 1 and t.numel() > 1:
            t = torch.randn(t.numel() + 1, dtype=dtype, device="cuda")[1:]
        out.append(t)
    return out


def _elem_tol(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float64:
        return {"rtol": FP64_RTOL, "atol": FP64_ATOL}
    if dtype in LOW:  # the reference rounds every intermediate to 16 bits, the kernel once
        return {"rtol": 1e-2, "atol": 1e-3}
    return {"rtol": FP32_ELEM_RTOL, "atol": FP32_ATOL}


def _loss_tol(dtype: torch.dtype) -> dict[str, float]:
    """Logit gradients of the focal loss (fp32/fp64 justified in focalsam_fast.testing)."""
    if dtype in LOW:
        return {"rtol": 1e-2, "atol": 1e-3}
    return loss_tolerances(dtype)[1]


def _sample_loss_tol(dtype: torch.dtype) -> dict[str, float]:
    """Per-sample focal losses (fp32/fp64 justified in focalsam_fast.testing)."""
    if dtype in LOW:
        return {"rtol": 1e-2, "atol": 1e-3}
    return loss_tolerances(dtype)[0]


def test_dispatcher_picks_cuda(cuda) -> None:
    from focalsam_fast.kernels import get_ops, resolve

    assert resolve("auto", "cuda") == "cuda"
    assert get_ops("cuda", "cuda") is cuda


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("unaligned", [False, True])
def test_sq_norm(cuda, seed: int, dtype: torch.dtype, adaptive: bool, unaligned: bool) -> None:
    grads = _rand(dtype=dtype, unaligned=unaligned)
    params = _rand(dtype=dtype) if adaptive else None
    out = cuda.sq_norm(grads, params)
    ref = reference.sq_norm(grads, params)
    assert out.dtype == ref.dtype and out.device == ref.device
    torch.testing.assert_close(out, ref, **tolerances(ref.dtype))
    assert torch.equal(out, cuda.sq_norm(grads, params))  # deterministic


def test_no_host_sync_and_graph_capture(cuda, seed: int) -> None:
    params, grads, grads2, bufs = _rand(), _rand(), _rand(), _rand()
    out = [torch.empty_like(p) for p in params]
    rho, lr = torch.tensor(0.05, device="cuda"), torch.tensor(0.1, device="cuda")

    def step() -> torch.Tensor:
        norm = cuda.sq_norm(grads).sqrt()
        cuda.perturb(params, grads, out, norm, rho)
        cuda.sgd_step(
            params,
            grads,
            grads2,
            bufs,
            lr=lr,
            momentum=0.9,
            dampening=0.0,
            weight_decay=1e-4,
            nesterov=False,
            maximize=False,
            first_step=False,
        )
        return norm

    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()  # warm-up on a side stream, as torch.cuda.graphs recommends
    torch.cuda.current_stream().wait_stream(side)
    with torch.cuda.graph(graph):
        norm = step()
    ref_p, ref_b, ref_out = [p.clone() for p in params], [b.clone() for b in bufs], [o.clone() for o in out]
    graph.replay()
    ref_norm = reference.sq_norm(grads).sqrt()
    reference.perturb(ref_p, grads, ref_out, ref_norm, rho)
    reference.sgd_step(
        ref_p,
        grads,
        grads2,
        ref_b,
        lr=lr,
        momentum=0.9,
        dampening=0.0,
        weight_decay=1e-4,
        nesterov=False,
        maximize=False,
        first_step=False,
    )
    torch.testing.assert_close(norm, ref_norm, **tolerances(torch.float32))
    torch.testing.assert_close(params, ref_p, rtol=2e-6, atol=FP32_ATOL)


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_perturb(cuda, seed: int, dtype: torch.dtype, adaptive: bool, as_tensor: bool) -> None:
    params, grads = _rand(dtype=dtype, unaligned=as_tensor), _rand(dtype=dtype)
    norm = reference.sq_norm(grads).sqrt()
    rho, inv = 0.05 + torch.rand(()).item(), 1 / 1024
    args = (
        (norm, torch.tensor(rho, device="cuda"), torch.tensor(inv, device="cuda"))
        if as_tensor
        else (norm.item(), rho, inv)
    )
    out = [torch.full_like(p, float("nan")) for p in params]
    expected = [torch.empty_like(p) for p in params]
    cuda.perturb(params, grads, out, *args[:2], adaptive=adaptive, inv_scale=args[2])
    reference.perturb(params, grads, expected, *args[:2], adaptive=adaptive, inv_scale=args[2])
    torch.testing.assert_close(out, expected, **_elem_tol(dtype))


SGD_CASES = [
    c
    for c in itertools.product(
        (0.0, 0.9),
        (0.0, 0.1),
        (False, True),
        (False, True),
        (0.0, 5e-4),
        (False, True),
        (False, True),
        (False, True),
    )
    if not (c[2] and (c[0] == 0 or c[1] != 0))
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("momentum", "dampening", "nesterov", "maximize", "weight_decay", "first_step", "two_grads", "lr_tensor"),
    SGD_CASES,
)
def test_sgd_step(
    cuda,
    seed: int,
    dtype: torch.dtype,
    momentum: float,
    dampening: float,
    nesterov: bool,
    maximize: bool,
    weight_decay: float,
    first_step: bool,
    two_grads: bool,
    lr_tensor: bool,
) -> None:
    params, grads, bufs = _rand(dtype=dtype), _rand(dtype=dtype, unaligned=True), _rand(dtype=dtype)
    grads2 = _rand(dtype=dtype) if two_grads else None
    lr = 0.01 + 0.1 * torch.rand(()).item()
    kw = {
        "lr": torch.tensor(lr, dtype=dtype, device="cuda") if lr_tensor else lr,
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": weight_decay,
        "nesterov": nesterov,
        "maximize": maximize,
        "first_step": first_step,
    }
    ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
    reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
    cuda.sgd_step(params, grads, grads2, bufs, **kw)
    torch.testing.assert_close(params, ref_p, **_elem_tol(dtype))
    if momentum != 0:
        torch.testing.assert_close(bufs, ref_b, **_elem_tol(dtype))


def _sgd_rounded_once(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    grads2: list[torch.Tensor],
    bufs: list[torch.Tensor],
    kw: dict,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """What the 16-bit kernels compute: g1 + g2 rounded to the tensor dtype (as the reference),
    then the update in fp32 (reference.sgd_step on fp32 copies), each output rounded once."""
    dtype = params[0].dtype
    g = [(a + b).float() for a, b in zip(grads, grads2)]
    p32, b32 = [p.float() for p in params], [b.float() for b in bufs]
    reference.sgd_step(p32, g, None, b32, **kw)
    return [p.to(dtype) for p in p32], [b.to(dtype) for b in b32]


def _one_ulp(dtype: torch.dtype) -> dict[str, float]:
    """One unit in the last place of a 16-bit format (the fp32 results may differ by an fp32 ulp,
    which can move the one rounding to the neighbouring 16-bit value)."""
    return {"rtol": 2.0**-10 if dtype == torch.float16 else 2.0**-7, "atol": 2.0**-24}


@pytest.mark.parametrize("dtype", LOW)
def test_sgd_step_low_precision(cuda, seed: int, dtype: torch.dtype) -> None:
    params, grads, grads2, bufs = (_rand(dtype=dtype) for _ in range(4))
    kw = {
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "weight_decay": 1e-4,
        "nesterov": True,
        "maximize": False,
        "first_step": False,
    }
    ref_p, ref_b = _sgd_rounded_once(params, grads, grads2, bufs, kw)
    cuda.sgd_step(params, grads, grads2, bufs, **kw)
    torch.testing.assert_close(params, ref_p, **_one_ulp(dtype))
    torch.testing.assert_close(bufs, ref_b, **_one_ulp(dtype))


def test_more_tensors_than_one_launch_table(cuda, seed: int) -> None:
    """301 tensors and > 320 chunks: several launches for every list depth (1 to 4)."""
    sizes = [int(s) for s in torch.randint(0, 3000, (300,))] + [40 * 65_536 + 3]
    grads, params, grads2, bufs = _rand(sizes), _rand(sizes), _rand(sizes), _rand(sizes)
    for p in (None, params):
        torch.testing.assert_close(
            cuda.sq_norm(grads, p), reference.sq_norm(grads, p), **tolerances(torch.float32)
        )
    out, expected = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    cuda.perturb(params, grads, out, 2.0, 0.1, adaptive=True)
    reference.perturb(params, grads, expected, 2.0, 0.1, adaptive=True)
    torch.testing.assert_close(out, expected, **_elem_tol(torch.float32))
    kw = {
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "weight_decay": 1e-4,
        "nesterov": False,
        "maximize": False,
        "first_step": False,
    }
    ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
    cuda.sgd_step(params, grads, grads2, bufs, **kw)
    reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
    torch.testing.assert_close(params, ref_p, **_elem_tol(torch.float32))
    torch.testing.assert_close(bufs, ref_b, **_elem_tol(torch.float32))


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize(("batch", "classes"), [(1, 8142), (300, 100), (4, 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_loss(cuda, seed: int, dtype: torch.dtype, batch: int, classes: int, weighted: bool) -> None:
    logits = 3 * torch.randn(batch, classes, dtype=dtype, device="cuda")
    present = torch.randperm(classes, device="cuda")[: max(1, classes // 7)]
    targets = present[torch.randint(0, len(present), (batch,), device="cuda")]
    tables = {
        "coeff": torch.rand(classes, device="cuda"),
        "scale": 0.5 + torch.rand(classes, device="cuda"),
        "bias": torch.randn(classes, device="cuda"),
        "margin": torch.rand(classes, device="cuda"),
    }
    weight = torch.rand(classes, device="cuda") + 0.1 if weighted else None
    got = cuda.focal_loss(logits, targets, **tables, weight=weight)
    ref = reference.focal_loss(logits, targets, **tables, weight=weight)
    for g, r, tol in zip(got, ref, (_sample_loss_tol(dtype), _loss_tol(dtype), _loss_tol(dtype))):
        assert g.dtype == dtype
        torch.testing.assert_close(g, r, **tol)


def test_focal_loss_gradients_match_autograd(cuda, seed: int) -> None:
    batch, classes = 1, 8142
    logits = torch.randn(batch, classes, device="cuda", requires_grad=True)
    targets = torch.randint(0, classes, (batch,), device="cuda")
    coeff, scale = torch.rand(classes, device="cuda"), torch.ones(classes, device="cuda")
    bias, margin = torch.randn(classes, device="cuda"), torch.zeros(classes, device="cuda")
    losses, ga, gb = cuda.focal_loss(logits.detach(), targets, coeff, scale, bias, margin)
    ref = reference.focal_loss(logits, targets, coeff, scale, bias, margin)[0]
    cy = coeff[targets]
    (ref_ga,) = torch.autograd.grad(((1 - cy) * ref).sum() / batch, logits, retain_graph=True)
    (ref_gb,) = torch.autograd.grad((cy * ref).sum() / batch, logits)
    torch.testing.assert_close(losses, ref.detach(), **_sample_loss_tol(torch.float32))
    torch.testing.assert_close(ga, ref_ga, **_loss_tol(torch.float32))
    torch.testing.assert_close(gb, ref_gb, **_loss_tol(torch.float32))


def test_custom_ops_opcheck_on_cuda(cuda, seed: int) -> None:
    from focalsam_fast.kernels import _native

    t = [torch.randn(s, device="cuda") for s in (5, 70_000)]
    torch.library.opcheck(_native.sq_norm_op, (t, t))
    norm = torch.tensor(2.0, device="cuda")
    torch.library.opcheck(
        _native.perturb_op, (t, t, [torch.empty_like(x) for x in t], norm, 0.0, None, 0.1, None, 1.0, True)
    )
    torch.library.opcheck(
        _native.sgd_step_op,
        (
            [x.clone() for x in t],
            t,
            t,
            [x.clone() for x in t],
            torch.tensor(0.1, device="cuda"),
            0.0,
            0.9,
            0.0,
            1e-4,
            True,
            False,
            False,
        ),
    )


# ---- non-finite inputs, AMP, vector widths (interface of issue 9) ---------------------------

_BITS = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}


def _same_bits(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    """Equal bit patterns (-0.0 != 0.0, NaN payloads count)."""
    return len(a) == len(b) and all(
        torch.equal(x.view(_BITS[x.dtype]), y.view(_BITS[y.dtype])) for x, y in zip(a, b)
    )


def _focal_tols(dtype: torch.dtype) -> tuple[dict[str, float], dict[str, float]]:
    """(losses, gradients)."""
    return _sample_loss_tol(dtype), _loss_tol(dtype)


def _assert_focal_close(got, ref, dtype: torch.dtype) -> None:
    loss_tol, grad_tol = _focal_tols(dtype)
    for g, r, tol in zip(got, ref, (loss_tol, grad_tol, grad_tol)):
        assert g.dtype == r.dtype and g.shape == r.shape and g.device == r.device
        torch.testing.assert_close(g, r, equal_nan=True, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", focal_cases.CLASSES)
@pytest.mark.parametrize("batch", focal_cases.BATCHES)
@pytest.mark.parametrize("case", focal_cases.CASES)
def test_focal_loss_special_values(
    cuda, seed: int, dtype: torch.dtype, classes: int, batch: int, case: str
) -> None:
    logits, targets, t = focal_cases.focal_inputs(case, batch, classes, dtype, device="cuda")
    got = cuda.focal_loss(logits, targets, **t)
    _assert_focal_close(got, reference.focal_loss(logits, targets, **t), dtype)
    rows = focal_cases.special_rows(batch)
    others = [i for i in range(batch) if i not in rows]
    if case in focal_cases.NAN_GRAD_CASES:
        assert got[1][rows].isnan().all() and got[2][rows].isnan().all()
    for out in got:
        assert out[others].isfinite().all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", [7, 300, 1000])
@pytest.mark.parametrize("value", [focal_cases.NAN, focal_cases.INF], ids=["nan", "two_posinf"])
def test_focal_loss_special_value_at_every_column(
    cuda, seed: int, dtype: torch.dtype, classes: int, value: float
) -> None:
    """Row i has the value in column i: with 300 / 1000 columns it is once the first value of each
    of the 256 threads (the NaN that issue 9 saw vanish from columns 0-255)."""
    logits, targets = focal_cases.one_special_per_position(classes, value, dtype, device="cuda")
    t = {
        "coeff": torch.rand(classes, dtype=dtype, device="cuda"),
        "scale": 0.5 + torch.rand(classes, dtype=dtype, device="cuda"),
        "bias": torch.randn(classes, dtype=dtype, device="cuda"),
        "margin": torch.rand(classes, dtype=dtype, device="cuda"),
    }
    got = cuda.focal_loss(logits, targets, **t)
    _assert_focal_close(got, reference.focal_loss(logits, targets, **t), dtype)
    assert got[1].isnan().all() and got[2].isnan().all()


@pytest.mark.parametrize("dtype", LOW)
def test_focal_loss_grad_scale_low_precision(cuda, seed: int, dtype: torch.dtype) -> None:
    """Loss scale 2^16 applied in fp32 before the one rounding to 16 bits (fp16: small entries
    survive; tolerance = half an ulp of the format plus the fp32 reduction error)."""
    batch, classes, gs = 70, 8142, 2.0**16
    logits = (3 * torch.randn(batch, classes, device="cuda")).to(dtype)
    targets = torch.randint(0, classes, (batch,), device="cuda")
    t = {
        "coeff": torch.rand(classes, device="cuda"),
        "scale": 0.5 + torch.rand(classes, device="cuda"),
        "bias": torch.randn(classes, device="cuda"),
        "margin": torch.rand(classes, device="cuda"),
    }
    scale_t = torch.tensor(gs, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses, ga, gb = cuda.focal_loss(logits, targets, **t, grad_scale=scale_t)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ref = reference.focal_loss(logits.float(), targets, **t, grad_scale=gs)
    half_ulp = 2.0**-11 if dtype == torch.float16 else 2.0**-8
    tol = {"rtol": 2 * half_ulp, "atol": 2.0**-24}
    torch.testing.assert_close(ga.float(), ref[1], **tol)
    torch.testing.assert_close(gb.float(), ref[2], **tol)
    torch.testing.assert_close(losses.float(), ref[0], rtol=2 * half_ulp, atol=0.0)
    as_float = cuda.focal_loss(logits, targets, **t, grad_scale=gs)
    assert _same_bits([losses, ga, gb], list(as_float))
    assert _same_bits([losses], [cuda.focal_loss(logits, targets, **t)[0]])  # losses are not scaled


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize("flag", [1.0, float("inf"), float("nan"), 0.0])
def test_sgd_step_found_inf(cuda, seed: int, dtype: torch.dtype, flag: float) -> None:
    """Non-zero found_inf: params and buffers keep their bits; zero: the same bits as no found_inf.
    Read on the device: no host sync."""
    params, grads, grads2, bufs = (_rand(dtype=dtype) for _ in range(4))
    params[1][0] = -0.0
    before_p, before_b = [p.clone() for p in params], [b.clone() for b in bufs]
    kw = {
        "lr": torch.tensor(0.05, device="cuda", dtype=acc(dtype)),
        "momentum": 0.9,
        "dampening": 0.0,
        "weight_decay": 1e-4,
        "nesterov": True,
        "maximize": False,
        "first_step": False,
    }
    torch.cuda.set_sync_debug_mode("error")
    try:
        cuda.sgd_step(params, grads, grads2, bufs, found_inf=torch.tensor([flag], device="cuda"), **kw)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    if flag != 0.0:
        assert _same_bits(params, before_p) and _same_bits(bufs, before_b)
    else:
        plain_p, plain_b = [p.clone() for p in before_p], [b.clone() for b in before_b]
        cuda.sgd_step(plain_p, grads, grads2, plain_b, **kw)
        assert _same_bits(params, plain_p) and _same_bits(bufs, plain_b)
        assert not _same_bits(params, before_p)


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize("norm", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("in_place", [False, True])
def test_perturb_non_finite_norm_keeps_params(
    cuda, seed: int, dtype: torch.dtype, norm: float, in_place: bool
) -> None:
    params, grads = _rand(dtype=dtype, unaligned=in_place), _rand(dtype=dtype)
    params[1][0], grads[1][1], grads[3][5] = -0.0, float("inf"), float("nan")
    before = [p.clone() for p in params]
    out = params if in_place else [torch.full_like(p, 7.0) for p in params]
    n = torch.tensor(norm, device="cuda", dtype=acc(dtype))
    torch.cuda.set_sync_debug_mode("error")
    try:
        cuda.perturb(params, grads, out, n, 0.05, adaptive=True, inv_scale=1 / 1024)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert _same_bits(out, before)


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize("unaligned", [False, True])
def test_sixteen_byte_vectors_every_dtype(cuda, seed: int, dtype: torch.dtype, unaligned: bool) -> None:
    """Sizes around the vector width of each dtype (16 / sizeof: 2, 4 or 8 elements), sub-chunk
    (4096) and chunk (65536) boundaries; small lists spread one chunk over up to 16 blocks."""
    sizes = (1, 2, 3, 4, 6, 8, 12, 1004, 4095, 4096, 4100, 65_535, 65_540, 3 * 65_536 + 8)
    params, grads = _rand(sizes, dtype, unaligned), _rand(sizes, dtype)
    grads2, bufs = _rand(sizes, dtype), _rand(sizes, dtype, unaligned)
    for p in (None, params):
        got = cuda.sq_norm(grads, p)
        torch.testing.assert_close(got, reference.sq_norm(grads, p), **tolerances(got.dtype))
        assert torch.equal(got, cuda.sq_norm(grads, p))
    out, expected = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    cuda.perturb(params, grads, out, 2.0, 0.1, adaptive=True)
    reference.perturb(params, grads, expected, 2.0, 0.1, adaptive=True)
    torch.testing.assert_close(out, expected, **_elem_tol(dtype))
    kw = {
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "weight_decay": 1e-4,
        "nesterov": False,
        "maximize": False,
        "first_step": False,
    }
    if dtype in LOW:
        ref_p, ref_b = _sgd_rounded_once(params, grads, grads2, bufs, kw)
        tol = _one_ulp(dtype)
    else:
        ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
        reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
        tol = _elem_tol(dtype)
    cuda.sgd_step(params, grads, grads2, bufs, **kw)
    torch.testing.assert_close(params, ref_p, **tol)
    torch.testing.assert_close(bufs, ref_b, **tol)


def test_custom_ops_opcheck_new_arguments(cuda, seed: int) -> None:
    from focalsam_fast.kernels import _native

    t = [torch.randn(s, device="cuda") for s in (5, 70_000)]
    flag = torch.tensor([1.0], device="cuda")
    torch.library.opcheck(
        _native.sgd_step_op,
        (
            [x.clone() for x in t],
            t,
            [],
            [x.clone() for x in t],
            None,
            0.1,
            0.9,
            0.0,
            0.0,
            False,
            False,
            False,
            flag,
        ),
    )
    logits, targets = torch.randn(6, 11, device="cuda"), torch.randint(0, 11, (6,), device="cuda")
    tables = [torch.rand(11, device="cuda") for _ in range(4)]
    torch.library.opcheck(
        _native.focal_loss_op, (logits, targets, *tables, None, torch.tensor(1024.0, device="cuda"), 1.0)
    )
