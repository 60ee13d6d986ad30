"""The CUDA kernels against :mod:`focalsam_fast.kernels.reference` (run on a GPU box; skipped here)."""

from __future__ import annotations

import itertools

import pytest
import torch

from focalsam_fast.kernels import reference
from focalsam_fast.testing import FP32_ATOL, FP32_ELEM_RTOL, FP32_LOSS_RTOL, FP64_ATOL, FP64_RTOL, tolerances

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
    if dtype == torch.float64:
        return {"rtol": FP64_RTOL, "atol": FP64_ATOL}
    if dtype in LOW:
        return {"rtol": 1e-2, "atol": 1e-3}
    return {"rtol": FP32_LOSS_RTOL, "atol": FP32_ATOL}


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
        cuda.sgd_step(params, grads, grads2, bufs, lr=lr, momentum=0.9, dampening=0.0, weight_decay=1e-4,
                      nesterov=False, maximize=False, first_step=False)
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
    reference.sgd_step(ref_p, grads, grads2, ref_b, lr=lr, momentum=0.9, dampening=0.0, weight_decay=1e-4,
                       nesterov=False, maximize=False, first_step=False)
    torch.testing.assert_close(norm, ref_norm, **tolerances(torch.float32))
    torch.testing.assert_close(params, ref_p, rtol=2e-6, atol=FP32_ATOL)


@pytest.mark.parametrize("dtype", DTYPES + LOW)
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_perturb(cuda, seed: int, dtype: torch.dtype, adaptive: bool, as_tensor: bool) -> None:
    params, grads = _rand(dtype=dtype, unaligned=as_tensor), _rand(dtype=dtype)
    norm = reference.sq_norm(grads).sqrt()
    rho, inv = 0.05 + torch.rand(()).item(), 1 / 1024
    args = (norm, torch.tensor(rho, device="cuda"), torch.tensor(inv, device="cuda")) if as_tensor else (
        norm.item(), rho, inv)
    out = [torch.full_like(p, float("nan")) for p in params]
    expected = [torch.empty_like(p) for p in params]
    cuda.perturb(params, grads, out, *args[:2], adaptive=adaptive, inv_scale=args[2])
    reference.perturb(params, grads, expected, *args[:2], adaptive=adaptive, inv_scale=args[2])
    torch.testing.assert_close(out, expected, **_elem_tol(dtype))


SGD_CASES = [
    c for c in itertools.product((0.0, 0.9), (0.0, 0.1), (False, True), (False, True), (0.0, 5e-4),
                                 (False, True), (False, True), (False, True))
    if not (c[2] and (c[0] == 0 or c[1] != 0))
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("momentum", "dampening", "nesterov", "maximize", "weight_decay", "first_step", "two_grads", "lr_tensor"),
    SGD_CASES)
def test_sgd_step(cuda, seed: int, dtype: torch.dtype, momentum: float, dampening: float, nesterov: bool,
                  maximize: bool, weight_decay: float, first_step: bool, two_grads: bool,
                  lr_tensor: bool) -> None:
    params, grads, bufs = _rand(dtype=dtype), _rand(dtype=dtype, unaligned=True), _rand(dtype=dtype)
    grads2 = _rand(dtype=dtype) if two_grads else None
    lr = 0.01 + 0.1 * torch.rand(()).item()
    kw = {"lr": torch.tensor(lr, dtype=dtype, device="cuda") if lr_tensor else lr, "momentum": momentum,
          "dampening": dampening, "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
          "first_step": first_step}
    ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
    reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
    cuda.sgd_step(params, grads, grads2, bufs, **kw)
    torch.testing.assert_close(params, ref_p, **_elem_tol(dtype))
    if momentum != 0:
        torch.testing.assert_close(bufs, ref_b, **_elem_tol(dtype))


@pytest.mark.parametrize("dtype", LOW)
def test_sgd_step_low_precision(cuda, seed: int, dtype: torch.dtype) -> None:
    params, grads, grads2, bufs = (_rand(dtype=dtype) for _ in range(4))
    kw = {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-4, "nesterov": True,
          "maximize": False, "first_step": False}
    ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
    reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
    cuda.sgd_step(params, grads, grads2, bufs, **kw)
    torch.testing.assert_close(params, ref_p, **_elem_tol(dtype))
    torch.testing.assert_close(bufs, ref_b, **_elem_tol(dtype))


def test_more_tensors_than_one_launch_table(cuda, seed: int) -> None:
    """301 tensors and > 320 chunks: several launches for every list depth (1 to 4)."""
    sizes = [int(s) for s in torch.randint(0, 3000, (300,))] + [40 * 65_536 + 3]
    grads, params, grads2, bufs = _rand(sizes), _rand(sizes), _rand(sizes), _rand(sizes)
    for p in (None, params):
        torch.testing.assert_close(cuda.sq_norm(grads, p), reference.sq_norm(grads, p),
                                   **tolerances(torch.float32))
    out, expected = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    cuda.perturb(params, grads, out, 2.0, 0.1, adaptive=True)
    reference.perturb(params, grads, expected, 2.0, 0.1, adaptive=True)
    torch.testing.assert_close(out, expected, **_elem_tol(torch.float32))
    kw = {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-4, "nesterov": False,
          "maximize": False, "first_step": False}
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
    tables = {"coeff": torch.rand(classes, device="cuda"), "scale": 0.5 + torch.rand(classes, device="cuda"),
              "bias": torch.randn(classes, device="cuda"), "margin": torch.rand(classes, device="cuda")}
    weight = torch.rand(classes, device="cuda") + 0.1 if weighted else None
    got = cuda.focal_loss(logits, targets, **tables, weight=weight)
    ref = reference.focal_loss(logits, targets, **tables, weight=weight)
    for g, r in zip(got, ref):
        assert g.dtype == dtype
        torch.testing.assert_close(g, r, **_loss_tol(dtype))


def test_focal_loss_gradients_match_autograd(cuda, seed: int) -> None:
    batch, classes = 1, 8142
    logits = torch.randn(batch, classes, device="cuda", requires_grad=True)
    targets = torch.randint(0, classes, (batch,), device="cuda")
    coeff, scale = torch.rand(classes, device="cuda"), torch.ones(classes, device="cuda")
    bias, margin = torch.randn(classes, device="cuda"), torch.zeros(classes, device="cuda")
    losses, ga, gb = cuda.focal_loss(logits.detach(), targets, coeff, scale, bias, margin)
    ref = reference.focal_loss(logits, targets, coeff, scale, bias, margin)[0]
    cy = coeff[targets]
    ref_ga, = torch.autograd.grad(((1 - cy) * ref).sum() / batch, logits, retain_graph=True)
    ref_gb, = torch.autograd.grad((cy * ref).sum() / batch, logits)
    torch.testing.assert_close(losses, ref.detach(), **_loss_tol(torch.float32))
    torch.testing.assert_close(ga, ref_ga, **_loss_tol(torch.float32))
    torch.testing.assert_close(gb, ref_gb, **_loss_tol(torch.float32))


def test_custom_ops_opcheck_on_cuda(cuda, seed: int) -> None:
    from focalsam_fast.kernels import _native

    t = [torch.randn(s, device="cuda") for s in (5, 70_000)]
    torch.library.opcheck(_native.sq_norm_op, (t, t))
    norm = torch.tensor(2.0, device="cuda")
    torch.library.opcheck(_native.perturb_op,
                          (t, t, [torch.empty_like(x) for x in t], norm, 0.0, None, 0.1, None, 1.0, True))
    torch.library.opcheck(_native.sgd_step_op, ([x.clone() for x in t], t, t, [x.clone() for x in t],
                                                torch.tensor(0.1, device="cuda"), 0.0, 0.9, 0.0, 1e-4, True,
                                                False, False))
