"""The C++ (OpenMP) kernels against the executable spec :mod:`focalsam_fast.kernels.reference`."""

from __future__ import annotations

import itertools

import pytest
import torch

from focalsam_fast.kernels import ImplUnavailableError, get_ops, reference, resolve
from focalsam_fast.testing import (
    FP32_ATOL,
    FP32_ELEM_RTOL,
    FP64_ATOL,
    FP64_RTOL,
    assert_focal_loss_close,
    tolerances,
)

cpp = pytest.importorskip("focalsam_fast.kernels.cpp", reason="focalsam_fast._C_cpu is not built")
native = cpp.load("cpu")

# odd sizes, an empty tensor, several 65,536-element chunks, a partial last chunk
SIZES = (1, 7, 0, 65_537, 3 * 65_536 + 5, 1_000, (3, 5, 2, 2))
SGD_SIZES = (1, 7, 0, 65_539, (3, 5, 2, 2))  # the option matrix is large: fewer, smaller tensors
DTYPES = (torch.float32, torch.float64)


@pytest.fixture(autouse=True, params=native.available_isas())
def isa(request: pytest.FixtureRequest) -> str:
    """Every test runs once per instruction set this CPU has (the plain build and AVX2 + FMA)."""
    before = native.isa()
    native.set_isa(request.param)
    yield request.param
    native.set_isa(before)


def test_set_isa_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match=r"'sse9' is not available.*valid: 'default'"):
        native.set_isa("sse9")


def _rand(sizes=SIZES, dtype=torch.float32) -> list[torch.Tensor]:
    return [torch.randn(s, dtype=dtype) for s in sizes]


def _elem_tol(dtype: torch.dtype) -> dict[str, float]:
    """Element-wise kernels (no reduction): 2 ulps in fp32."""
    if dtype == torch.float64:
        return {"rtol": FP64_RTOL, "atol": FP64_ATOL}
    return {"rtol": FP32_ELEM_RTOL, "atol": FP32_ATOL}


def test_dispatcher_picks_cpp_on_cpu() -> None:
    assert resolve("auto", "cpu") == "cpp"
    assert get_ops("cpp", "cpu") is cpp


def test_explicit_unavailable_impl_raises_clear_error() -> None:
    with pytest.raises(ImplUnavailableError, match=r"impl='cpp' is not available on device meta.*CPU"):
        resolve("cpp", "meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_explicit_cuda_impl_without_gpu_names_the_reason() -> None:
    with pytest.raises(ImplUnavailableError, match=r"impl='cuda' is not available on device cuda: "):
        resolve("cuda", "cuda")


# ---- sq_norm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("adaptive", [False, True])
def test_sq_norm_matches_reference(seed: int, dtype: torch.dtype, adaptive: bool) -> None:
    grads = _rand(dtype=dtype)
    params = _rand(dtype=dtype) if adaptive else None
    out = cpp.sq_norm(grads, params)
    ref = reference.sq_norm(grads, params)
    assert out.dtype == ref.dtype and out.shape == ()
    torch.testing.assert_close(out, ref, **tolerances(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sq_norm_low_precision_accumulates_in_fp32(seed: int, dtype: torch.dtype) -> None:
    grads = _rand(dtype=dtype)
    params = _rand(dtype=dtype)
    for p in (None, params):
        out = cpp.sq_norm(grads, p)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, reference.sq_norm(grads, p), **tolerances(torch.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sq_norm_is_deterministic_across_runs_and_threads(seed: int, dtype: torch.dtype) -> None:
    grads = _rand(dtype=dtype)
    first = cpp.sq_norm(grads)
    assert torch.equal(first, cpp.sq_norm(grads))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = cpp.sq_norm(grads)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first, single)


def test_sq_norm_of_empty_tensors_is_zero() -> None:
    out = cpp.sq_norm([torch.empty(0), torch.empty(0, 3)])
    assert out.item() == 0.0


def test_sq_norm_needs_a_tensor() -> None:
    with pytest.raises(ValueError, match="at least one"):
        cpp.sq_norm([])


# ---- perturb ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_perturb_matches_reference(seed: int, dtype: torch.dtype, adaptive: bool, as_tensor: bool) -> None:
    params, grads = _rand(dtype=dtype), _rand(dtype=dtype)
    norm = reference.sq_norm(grads).sqrt()
    rho = 0.05 + torch.rand(()).item()
    inv = 1.0 / (1.0 + 1000 * torch.rand(()).item())
    args = (norm, torch.tensor(rho), torch.tensor(inv)) if as_tensor else (norm.item(), rho, inv)
    out = [torch.full_like(p, float("nan")) for p in params]
    expected = [torch.empty_like(p) for p in params]
    snapshot = [p.clone() for p in params]
    cpp.perturb(params, grads, out, *args[:2], adaptive=adaptive, inv_scale=args[2])
    reference.perturb(params, grads, expected, *args[:2], adaptive=adaptive, inv_scale=args[2])
    torch.testing.assert_close(out, expected, **_elem_tol(dtype))
    assert all(torch.equal(p, s) for p, s in zip(params, snapshot))  # params untouched


def test_perturb_in_place_and_zero_norm(seed: int) -> None:
    params, grads = _rand(), _rand()
    expected = [torch.empty_like(p) for p in params]
    reference.perturb(params, grads, expected, 0.0, 0.1)
    cpp.perturb(params, grads, params, 0.0, 0.1)  # out aliases params
    torch.testing.assert_close(params, expected, **_elem_tol(torch.float32))


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("in_place", [False, True])
def test_perturb_large_pass_matches_reference(seed: int, adaptive: bool, in_place: bool) -> None:
    """A pass of at least ``stream_min_elements`` (non-temporal stores on AVX2) into an output that
    starts off the 32-byte boundary (scalar head, vector body, scalar tail); in place: normal stores."""
    sizes = (native.stream_min_elements + 13, 5)
    params, grads = _rand(sizes), _rand(sizes)
    expected = [torch.empty_like(p) for p in params]
    reference.perturb(params, grads, expected, 3.0, 0.05, adaptive=adaptive)
    out = params if in_place else [torch.full((p.numel() + 1,), float("nan"))[1:] for p in params]
    cpp.perturb(params, grads, out, 3.0, 0.05, adaptive=adaptive)
    torch.testing.assert_close(out, expected, **_elem_tol(torch.float32))


def test_perturb_empty_list_is_a_no_op() -> None:
    cpp.perturb([], [], [], 1.0, 0.1)


# ---- sgd_step --------------------------------------------------------------------------------

SGD_CASES = [
    c
    for c in itertools.product(
        (0.0, 0.9),  # momentum
        (0.0, 0.1),  # dampening
        (False, True),  # nesterov
        (False, True),  # maximize
        (0.0, 5e-4),  # weight_decay
        (False, True),  # first_step
        (False, True),  # grads2 given
        (False, True),  # lr as a tensor
    )
    if not (c[2] and (c[0] == 0 or c[1] != 0))  # torch.optim.SGD: nesterov needs momentum, no dampening
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("momentum", "dampening", "nesterov", "maximize", "weight_decay", "first_step", "two_grads", "lr_tensor"),
    SGD_CASES,
)
def test_sgd_step_matches_reference(
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
    params, grads = _rand(SGD_SIZES, dtype), _rand(SGD_SIZES, dtype)
    grads2 = _rand(SGD_SIZES, dtype) if two_grads else None
    bufs = _rand(SGD_SIZES, dtype)
    lr = 0.01 + 0.1 * torch.rand(()).item()
    kw = {
        "lr": torch.tensor(lr, dtype=dtype) if lr_tensor else lr,
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": weight_decay,
        "nesterov": nesterov,
        "maximize": maximize,
        "first_step": first_step,
    }
    ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
    grads_copy = [g.clone() for g in grads]
    reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
    cpp.sgd_step(params, grads, grads2, bufs, **kw)
    torch.testing.assert_close(params, ref_p, **_elem_tol(dtype))
    if momentum != 0:
        torch.testing.assert_close(bufs, ref_b, **_elem_tol(dtype))
    assert all(torch.equal(g, c) for g, c in zip(grads, grads_copy))  # grads not modified


def test_sgd_steps_track_torch_optim_sgd(seed: int) -> None:
    """Several steps (first_step, then momentum updates) follow torch.optim.SGD itself."""
    params = [torch.nn.Parameter(t) for t in _rand(sizes=(9, 70_001, (4, 3)))]
    mine = [p.detach().clone() for p in params]
    bufs = [torch.empty_like(p) for p in mine]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    for step in range(4):
        grads = [torch.randn_like(p) for p in mine]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        cpp.sgd_step(
            mine,
            grads,
            None,
            bufs,
            lr=0.05,
            momentum=0.9,
            dampening=0.0,
            weight_decay=1e-3,
            nesterov=True,
            maximize=False,
            first_step=step == 0,
        )
    torch.testing.assert_close(mine, [p.detach() for p in params], **tolerances(torch.float32))


# ---- lists longer than one launch table, layouts, errors -------------------------------------


def test_more_tensors_than_one_launch_table(seed: int) -> None:
    sizes = [int(s) for s in torch.randint(0, 3000, (301,))]
    grads, params = _rand(sizes), _rand(sizes)
    torch.testing.assert_close(
        cpp.sq_norm(grads, params), reference.sq_norm(grads, params), **tolerances(torch.float32)
    )
    out, expected = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    cpp.perturb(params, grads, out, 2.0, 0.1, adaptive=True)
    reference.perturb(params, grads, expected, 2.0, 0.1, adaptive=True)
    torch.testing.assert_close(out, expected, **_elem_tol(torch.float32))
    bufs, ref_p, ref_b = _rand(sizes), [p.clone() for p in params], None
    ref_b = [b.clone() for b in bufs]
    kw = {
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "weight_decay": 1e-4,
        "nesterov": False,
        "maximize": False,
        "first_step": False,
    }
    cpp.sgd_step(params, grads, out, bufs, **kw)
    reference.sgd_step(ref_p, grads, expected, ref_b, **kw)
    torch.testing.assert_close(params, ref_p, **_elem_tol(torch.float32))
    torch.testing.assert_close(bufs, ref_b, **_elem_tol(torch.float32))


@pytest.mark.parametrize("threads", [2, 3])
def test_uneven_tensor_lists_split_by_elements(seed: int, threads: int) -> None:
    """Many small tensors, then a few large ones (the shape of ResNet-50's list): with several
    threads each chunk is processed once (parity with the reference) and the norm keeps its bits."""
    sizes = [int(s) for s in torch.randint(1, 3000, (120,))] + [600_000, 3 * 65_536 + 7, 300_001]
    grads, params, bufs = _rand(sizes), _rand(sizes), _rand(sizes)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = cpp.sq_norm(grads, params)
        torch.set_num_threads(threads)
        assert torch.equal(cpp.sq_norm(grads, params), single)
        out = [torch.full_like(p, float("nan")) for p in params]
        expected = [torch.empty_like(p) for p in params]
        cpp.perturb(params, grads, out, 2.0, 0.1)
        reference.perturb(params, grads, expected, 2.0, 0.1)
        torch.testing.assert_close(out, expected, **_elem_tol(torch.float32))
        ref_p, ref_b = [p.clone() for p in params], [b.clone() for b in bufs]
        kw = {
            "lr": 0.1,
            "momentum": 0.9,
            "dampening": 0.0,
            "weight_decay": 1e-4,
            "nesterov": True,
            "maximize": False,
            "first_step": False,
        }
        cpp.sgd_step(params, grads, out, bufs, **kw)
        reference.sgd_step(ref_p, grads, expected, ref_b, **kw)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(params, ref_p, **_elem_tol(torch.float32))
    torch.testing.assert_close(bufs, ref_b, **_elem_tol(torch.float32))


def test_non_contiguous_read_only_inputs_and_channels_last(seed: int) -> None:
    params = [torch.randn(8, 3, 5, 5).to(memory_format=torch.channels_last), torch.randn(33)]
    grads = [torch.randn(8, 3, 5, 5), torch.randn(66)[::2]]  # other layout / strided view
    out = [torch.empty_like(p) for p in params]
    expected = [torch.empty_like(p) for p in params]
    cpp.perturb(params, grads, out, 3.0, 0.2)
    reference.perturb(params, grads, expected, 3.0, 0.2)
    torch.testing.assert_close(out, expected, **_elem_tol(torch.float32))
    torch.testing.assert_close(
        cpp.sq_norm(grads, params), reference.sq_norm(grads, params), **tolerances(torch.float32)
    )


def test_bad_inputs_raise_actionable_errors() -> None:
    p = [torch.randn(4, 4)]
    with pytest.raises(ValueError, match=r"params\[0\].*updated in place.*contiguous"):
        cpp.sgd_step(
            [p[0].t()],
            p,
            None,
            [],
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            weight_decay=0.0,
            nesterov=False,
            maximize=False,
            first_step=True,
        )
    with pytest.raises(TypeError, match=r"grads\[1\] has dtype torch.float64"):
        cpp.sq_norm([torch.randn(3), torch.randn(3, dtype=torch.float64)])
    with pytest.raises(TypeError, match="int64"):
        cpp.sq_norm([torch.ones(3, dtype=torch.int64)])
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3,\) but expected \(4, 4\)"):
        cpp.perturb(p, [torch.randn(3)], p, 1.0, 0.1)
    with pytest.raises(ValueError, match=r"grads\[1\] has layout torch.sparse_coo.*dense"):
        cpp.sq_norm([torch.randn(3), torch.randn(3).to_sparse()])
    with pytest.raises(ValueError, match="rho must be a float or a one-element tensor"):
        cpp.perturb(p, p, [torch.empty(4, 4)], 1.0, torch.ones(2))


def test_native_module_checks_its_arguments() -> None:
    from focalsam_fast.kernels._native import load

    mod = load("cpu")
    with pytest.raises(ValueError, match="dtype code 7"):
        mod.sq_norm(7, [1], [], [1], 1, 1)
    with pytest.raises(ValueError, match=r"len\(grads\) = 2 but len\(numels\) = 1"):
        mod.sq_norm(0, [1, 2], [], [1], 1, 1)
    with pytest.raises(ValueError, match=r"grads\[0\] is a null pointer but numels\[0\] = 5"):
        mod.sq_norm(0, [0], [], [5], 1, 1)
    with pytest.raises(ValueError, match="num_threads = 0"):
        mod.sq_norm(0, [1], [], [0], 1, 0)


# ---- focal_loss ------------------------------------------------------------------------------


def _tables(c: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    return {
        "coeff": torch.rand(c, dtype=dtype) * 1.2,
        "scale": 0.5 + torch.rand(c, dtype=dtype),
        "bias": torch.randn(c, dtype=dtype),
        "margin": torch.rand(c, dtype=dtype),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("batch", "classes"), [(1, 8142), (37, 100), (5, 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_loss_matches_reference(
    seed: int, dtype: torch.dtype, batch: int, classes: int, weighted: bool
) -> None:
    logits = 3 * torch.randn(batch, classes, dtype=dtype)
    present = torch.randperm(classes)[: max(1, classes // 7)]  # most classes absent from the batch
    targets = present[torch.randint(0, len(present), (batch,))]
    t = _tables(classes)
    weight = torch.rand(classes) + 0.1 if weighted else None
    got = cpp.focal_loss(logits, targets, **t, weight=weight)
    ref = reference.focal_loss(logits, targets, **t, weight=weight)
    assert got[0].dtype == dtype
    assert_focal_loss_close(got, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_loss_gradients_match_autograd(seed: int, dtype: torch.dtype, weighted: bool) -> None:
    """grad_a / grad_b are d/dz of (1/B) sum (1 - c_y) l and (1/B) sum c_y l (docs/spec.md §2 steps 2-3)."""
    for batch, classes in ((1, 8142), (16, 50)):
        logits = (2 * torch.randn(batch, classes, dtype=dtype)).requires_grad_()
        targets = torch.randint(0, classes, (batch,))
        t = _tables(classes, dtype)
        weight = torch.rand(classes, dtype=dtype) + 0.1 if weighted else None
        losses, grad_a, grad_b = cpp.focal_loss(logits.detach(), targets, **t, weight=weight)
        ref_losses = reference.focal_loss(logits, targets, **t, weight=weight)[0]
        cy = t["coeff"][targets]
        (ga,) = torch.autograd.grad(((1 - cy) * ref_losses).sum() / batch, logits, retain_graph=True)
        (gb,) = torch.autograd.grad((cy * ref_losses).sum() / batch, logits)
        assert_focal_loss_close((losses, grad_a, grad_b), (ref_losses.detach(), ga, gb))


def test_focal_loss_bad_labels_give_nan_rows_and_shapes_raise(seed: int) -> None:
    """A label outside [0, C) is never used as an index: its row is NaN, the others are unaffected
    (the optimizers report bad labels with a clear error when check_inputs is on)."""
    t = _tables(10)
    logits = torch.randn(3, 10)
    targets = torch.tensor([3, 10, -1])
    got = cpp.focal_loss(logits, targets, **t)
    assert all(g[1:].isnan().all() and g[0].isfinite().all() for g in got)
    assert_focal_loss_close(got, reference.focal_loss(logits, targets, **t), equal_nan=True)
    with pytest.raises(ValueError, match=r"margin must have shape \(10,\)"):
        cpp.focal_loss(torch.randn(2, 10), torch.tensor([3, 1]), **{**t, "margin": torch.zeros(9)})
    with pytest.raises(TypeError, match="integer class indices"):
        cpp.focal_loss(torch.randn(2, 10), torch.tensor([3.0, 1.0]), **t)


def test_focal_loss_empty_batch() -> None:
    losses, ga, gb = cpp.focal_loss(torch.randn(0, 10), torch.zeros(0, dtype=torch.long), **_tables(10))
    assert losses.shape == (0,) and ga.shape == gb.shape == (0, 10)
