"""Triton kernels against the executable spec ``focalsam_fast.kernels.reference``.

Without a GPU the kernels run in Triton's CPU interpreter (``tests/conftest.py`` sets
``TRITON_INTERPRET=1`` before anything imports them): the ``cpu`` cases below.  On a GPU machine
the ``cuda`` cases (marker ``gpu``) run the compiled kernels; the ``cpu`` ones skip.  Inputs are
fresh random values (seeded per run by the ``seed`` fixture), never zeros, except where an edge case
is about zeros.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from focalsam_fast.kernels import availability
from focalsam_fast.kernels import reference as ref
from focalsam_fast.testing import (
    FP32_ATOL,
    FP32_ELEM_RTOL,
    assert_focal_loss_close,
    tolerances,
)

tk = importlib.import_module("focalsam_fast.kernels.triton")
mt = importlib.import_module("focalsam_fast.kernels.triton.multi_tensor")

DTYPES = [torch.float32, torch.float64]
# odd sizes, an empty tensor, a 4-d conv weight, scalars-like tensors and multi-chunk tensors
SHAPES = [(3, 5), (1000,), (0,), (7, 3, 3, 3), (2049,), (1,), (64, 33), (0, 4), (5000,)]


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest, seed: int, monkeypatch: pytest.MonkeyPatch) -> torch.device:
    """The device under test; in the interpreter, small chunks so that tensors span several."""
    dev = torch.device(request.param)
    ok, why = tk.is_available(dev)
    if not ok:
        pytest.skip(why)
    monkeypatch.setattr(mt, "BLOCK_INTERPRET", 512)
    return dev


def _rand(shapes, dtype, device) -> list[torch.Tensor]:
    return [torch.randn(s, dtype=dtype, device=device) for s in shapes]


def _elem_tol(dtype: torch.dtype) -> dict[str, float]:
    """Element-wise kernels (no reduction): 2 ulps in fp32 (FMA contraction on GPUs)."""
    return tolerances(dtype) if dtype == torch.float64 else {"rtol": FP32_ELEM_RTOL, "atol": FP32_ATOL}


def _step_tol(dtype: torch.dtype, tensors: list[torch.Tensor]) -> dict[str, float]:
    """Optimizer steps: ``tolerances(dtype)``, but in fp32 the absolute part scales with the largest
    operand: an update ``p - lr * g`` that cancels to ~0 keeps the rounding error of its operands
    (FMA contraction in ATen's CPU kernels vs none in the interpreter changes a few of those ulps)."""
    tol = tolerances(dtype)
    if dtype == torch.float32:
        tol["atol"] = tol["rtol"] * max(float(t.abs().max()) for t in tensors if t.numel())
    return tol


def _assert_lists_close(actual, expected, **tol) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, **tol)


# --------------------------------------------------------------------------- availability


def test_is_available_matches_the_interpreter_switch() -> None:
    cpu_ok, cpu_why = tk.is_available(torch.device("cpu"))
    cuda_ok, cuda_why = tk.is_available(torch.device("cuda"))
    if tk.INTERPRETED:
        assert cpu_ok and cpu_why == ""
        assert not cuda_ok and "TRITON_INTERPRET" in cuda_why
    else:
        assert not cpu_ok
        assert cpu_why == "Triton needs a CUDA GPU (or TRITON_INTERPRET=1 for the CPU interpreter)"
        assert cuda_ok == torch.cuda.is_available()
    assert availability("triton", "cpu") == (cpu_ok, cpu_why)


def test_missing_triton_is_reported_not_raised() -> None:
    """Without the ``triton`` package the dispatcher records a clear reason instead of failing."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None  # makes "import triton" raise ImportError
        from focalsam_fast.kernels import availability
        ok, why = availability("triton", "cpu")
        assert not ok and "need the 'triton' package" in why, why
        """
    )
    res = _run_python(script)
    assert res.returncode == 0, res.stderr[-4000:]


def _run_python(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh Python with this checkout importable and without the interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-c", script]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- sq_norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("adaptive", [False, True])
def test_sq_norm(device: torch.device, dtype: torch.dtype, adaptive: bool) -> None:
    grads = _rand(SHAPES, dtype, device)
    params = _rand(SHAPES, dtype, device) if adaptive else None
    got = tk.sq_norm(grads, params)
    assert got.shape == () and got.dtype == dtype and got.device.type == device.type
    torch.testing.assert_close(got, ref.sq_norm(grads, params), **tolerances(dtype))


def test_sq_norm_many_tensors(device: torch.device) -> None:
    sizes = torch.randint(1, 60, (100,)).tolist()
    grads = _rand(sizes, torch.float32, device)
    params = _rand(sizes, torch.float32, device)
    got, want = tk.sq_norm(grads, params), ref.sq_norm(grads, params)
    torch.testing.assert_close(got, want, **tolerances(torch.float32))


def test_sq_norm_is_deterministic_and_follows_new_storages(device: torch.device) -> None:
    grads = _rand(SHAPES, torch.float32, device)
    first = tk.sq_norm(grads)
    mt._PLANS.clear()
    mt._LAYOUTS.clear()
    assert torch.equal(first, tk.sq_norm(grads))  # bitwise, also with freshly built plans
    assert torch.equal(first, tk.sq_norm(grads))  # and with cached ones
    fresh = _rand(SHAPES, torch.float32, device)  # same shapes, new storages: new address table
    torch.testing.assert_close(tk.sq_norm(fresh), ref.sq_norm(fresh), **tolerances(torch.float32))


def test_sq_norm_mixed_dtypes_and_layouts(device: torch.device) -> None:
    """One launch per dtype group; the accumulation dtype follows the first tensor; any dense layout."""
    grads = [
        torch.randn(6, 5, dtype=torch.float32, device=device),
        torch.randn(700, dtype=torch.float64, device=device),
        torch.randn(2, 3, 4, 5, device=device).to(memory_format=torch.channels_last),
        torch.randn(9, 7, device=device).t(),
    ]
    got = tk.sq_norm(grads)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref.sq_norm(grads), **tolerances(torch.float32))


def test_sq_norm_rejects_bad_inputs(device: torch.device) -> None:
    with pytest.raises(ValueError, match="at least one"):
        tk.sq_norm([])
    with pytest.raises(ValueError, match="not dense"):
        tk.sq_norm([torch.randn(8, 8, device=device)[:, :3]])
    with pytest.raises(ValueError, match="shapes/strides differ"):
        tk.sq_norm([torch.randn(4, 3, device=device)], [torch.randn(3, 4, device=device)])
    with pytest.raises(ValueError, match="differ in length"):
        tk.sq_norm([torch.randn(3, device=device)] * 2, [torch.randn(3, device=device)])


# --------------------------------------------------------------------------- perturb


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("hyper_as_tensors", [False, True])
def test_perturb(device: torch.device, dtype: torch.dtype, adaptive: bool, hyper_as_tensors: bool) -> None:
    params = _rand(SHAPES, dtype, device)
    grads = _rand(SHAPES, dtype, device)
    saved = [p.clone() for p in params]
    norm = ref.sq_norm(grads, params if adaptive else None).sqrt()
    rho, inv_scale = 0.05 + torch.rand(()).item(), 1.0 / 1024
    if hyper_as_tensors:
        rho = torch.tensor(rho, dtype=torch.float64, device=device)
        inv_scale = torch.tensor(inv_scale, dtype=torch.float32, device=device)
    got = [torch.full_like(p, float("nan")) for p in params]
    want = [torch.empty_like(p) for p in params]
    tk.perturb(params, grads, got, norm, rho, adaptive=adaptive, inv_scale=inv_scale)
    ref.perturb(params, grads, want, norm, rho, adaptive=adaptive, inv_scale=inv_scale)
    _assert_lists_close(got, want, **_elem_tol(dtype))
    _assert_lists_close(params, saved, rtol=0, atol=0)  # params are never written


@pytest.mark.parametrize("dtype", DTYPES)
def test_perturb_zero_gradient_keeps_weights_exactly(device: torch.device, dtype: torch.dtype) -> None:
    """lambda = 0: h = 0, norm = 0, so eps = 0 exactly (the 1e-12 guard, no NaN)."""
    params = _rand(SHAPES, dtype, device)
    grads = [torch.zeros_like(p) for p in params]
    out = [torch.empty_like(p) for p in params]
    tk.perturb(params, grads, out, tk.sq_norm(grads).sqrt(), 0.1)
    _assert_lists_close(out, params, rtol=0, atol=0)


def test_perturb_empty_list_is_a_no_op(device: torch.device) -> None:
    tk.perturb([], [], [], torch.ones((), device=device), 0.1)


# --------------------------------------------------------------------------- sgd_step

SGD_CASES = [
    # momentum, dampening, weight_decay, nesterov, maximize, with grads2, lr as a device tensor
    (0.0, 0.0, 0.0, False, False, False, False),
    (0.0, 0.0, 1e-3, False, True, True, True),
    (0.9, 0.0, 5e-4, False, False, True, False),
    (0.9, 0.1, 2e-4, False, False, True, True),
    (0.9, 0.0, 1e-3, True, False, True, False),
    (0.8, 0.0, 0.0, True, True, False, True),
    (0.5, 0.3, 1e-2, False, True, False, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("momentum", "dampening", "weight_decay", "nesterov", "maximize", "two", "lr_tensor"), SGD_CASES
)
def test_sgd_step(
    device: torch.device,
    dtype: torch.dtype,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    two: bool,
    lr_tensor: bool,
) -> None:
    """Three steps (first_step, then two later ones) against the reference, new gradients each step."""
    shapes = SHAPES[:4] + SHAPES[-2:]
    params = _rand(shapes, dtype, device)
    expected = [p.clone() for p in params]
    bufs = [torch.full_like(p, float("nan")) for p in params]  # first step must overwrite garbage
    bufs_ref = [torch.empty_like(p) for p in params]
    for step in range(3):
        lr = 0.1 / (step + 1)
        grads = _rand(shapes, dtype, device)
        grads2 = _rand(shapes, dtype, device) if two else None
        saved = [g.clone() for g in grads]
        kw = dict(
            lr=torch.tensor(lr, dtype=dtype, device=device) if lr_tensor else lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            first_step=step == 0,
        )
        tk.sgd_step(params, grads, grads2, bufs if momentum else [], **kw)
        tol = _step_tol(dtype, expected + grads + (grads2 or []) + (bufs_ref if step else []))
        ref.sgd_step(expected, grads, grads2, bufs_ref, **kw)
        _assert_lists_close(params, expected, **tol)
        _assert_lists_close(grads, saved, rtol=0, atol=0)  # grads are not modified
        if momentum:
            _assert_lists_close(bufs, bufs_ref, **tol)


def test_sgd_step_many_tensors_matches_torch_optim_sgd(device: torch.device) -> None:
    sizes = torch.randint(1, 40, (40,)).tolist()
    params = _rand(sizes, torch.float32, device)
    bufs = [torch.empty_like(p) for p in params]
    model = [torch.nn.Parameter(p.clone()) for p in params]
    opt = torch.optim.SGD(model, lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=False)
    for step in range(2):
        grads, grads2 = _rand(sizes, torch.float32, device), _rand(sizes, torch.float32, device)
        tol = _step_tol(torch.float32, params + grads + grads2 + (bufs if step else []))
        for m, g, g2 in zip(model, grads, grads2, strict=True):
            m.grad = g + g2
        opt.step()
        tk.sgd_step(
            params,
            grads,
            grads2,
            bufs,
            lr=0.05,
            momentum=0.9,
            dampening=0.0,
            weight_decay=5e-4,
            nesterov=False,
            maximize=False,
            first_step=step == 0,
        )
        _assert_lists_close(params, [m.detach() for m in model], **tol)


# --------------------------------------------------------------------------- focal_loss


def _tables(n_cls: int, dtype: torch.dtype, device: torch.device, kind: str) -> dict[str, torch.Tensor]:
    """Per-class tables of one loss family, random but in the ranges the losses use."""
    counts = torch.randint(5, 500, (n_cls,), device=device).to(dtype)
    prior = counts / counts.sum()
    ones, zeros = torch.ones_like(prior), torch.zeros_like(prior)
    coeff = 0.8 * (1 - prior) ** 2.0
    if kind == "ce":
        return dict(coeff=coeff, scale=ones, bias=zeros, margin=zeros)
    if kind == "la":
        return dict(coeff=coeff, scale=ones, bias=torch.log(prior + 1e-9), margin=zeros)
    if kind == "vs":
        scale = (counts / counts.max()) ** 0.3
        return dict(coeff=coeff, scale=scale, bias=torch.log(prior), margin=zeros)
    margin = counts**-0.25
    return dict(coeff=coeff, scale=30 * ones, bias=zeros, margin=30 * 0.5 * margin / margin.max())  # ldam


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("batch", "n_cls", "kind", "weighted"),
    [
        (1, 10, "ce", False),  # B = 1
        (4, 100, "la", True),
        (3, 8142, "la", False),  # iNat-sized rows span several chunks
        (5, 37, "vs", True),
        (6, 10, "ldam", False),
        (8, 100, "ldam", True),
    ],
)
def test_focal_loss(
    device: torch.device, dtype: torch.dtype, batch: int, n_cls: int, kind: str, weighted: bool
) -> None:
    logits = 3 * torch.randn(batch, n_cls, dtype=dtype, device=device)
    # at most 3 distinct labels: most classes are absent from the batch
    present = torch.randperm(n_cls, device=device)[:3]
    targets = present[torch.randint(0, len(present), (batch,), device=device)]
    tables = _tables(n_cls, dtype, device, kind)
    weight = torch.rand(n_cls, dtype=dtype, device=device) + 0.5 if weighted else None
    got = tk.focal_loss(logits, targets, **tables, weight=weight)
    want = ref.focal_loss(logits, targets, **tables, weight=weight)
    assert got[0].dtype == dtype
    assert_focal_loss_close(got, want)


def test_focal_loss_non_contiguous_logits_and_empty_batch(device: torch.device) -> None:
    logits = torch.randn(40, 6, device=device).t()  # row stride 1, column stride 6
    targets = torch.randint(0, 40, (6,), device=device)
    tables = _tables(40, torch.float32, device, "la")
    got = tk.focal_loss(logits, targets, **tables)
    assert_focal_loss_close(got, ref.focal_loss(logits, targets, **tables))
    empty = tk.focal_loss(logits[:0], targets[:0], **tables)
    assert [tuple(t.shape) for t in empty] == [(0,), (0, 40), (0, 40)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device: torch.device, dtype: torch.dtype) -> None:
    """16-bit tensors: fp32 norm and scale (as the reference), one rounding per stored value; the
    SGD update runs in fp32 (like ATen's fused SGD), so it may differ from the per-op rounding of the
    reference loop by an ulp of ``dtype``."""
    dev = device
    params, grads = _rand(SHAPES, dtype, dev), _rand(SHAPES, dtype, dev)
    norm = tk.sq_norm(grads, params)
    assert norm.dtype == torch.float32
    torch.testing.assert_close(norm, ref.sq_norm(grads, params), **tolerances(torch.float32))
    eps = torch.finfo(dtype).eps
    got, want = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
    tk.perturb(params, grads, got, norm.sqrt(), 0.05, adaptive=True)
    ref.perturb(params, grads, want, norm.sqrt(), 0.05, adaptive=True)
    _assert_lists_close(got, want, rtol=eps, atol=eps)
    expected, bufs, bufs_ref = (
        [p.clone() for p in params],
        [torch.empty_like(p) for p in params],
        [torch.empty_like(p) for p in params],
    )
    kw = dict(
        lr=0.1, momentum=0.9, dampening=0.0, weight_decay=1e-3, nesterov=True, maximize=False, first_step=True
    )
    tk.sgd_step(params, grads, got, bufs, **kw)
    ref.sgd_step(expected, grads, got, bufs_ref, **kw)
    _assert_lists_close(params, expected, rtol=2 * eps, atol=4 * eps)
    logits = torch.randn(6, 1000, device=dev, dtype=dtype)
    targets = torch.randint(0, 1000, (6,), device=dev)
    tables = _tables(1000, torch.float32, dev, "la")
    _assert_lists_close(
        tk.focal_loss(logits, targets, **tables),
        ref.focal_loss(logits, targets, **tables),
        rtol=eps,
        atol=eps / 100,
    )


# --------------------------------------------------------------------------- GPU-only


@pytest.mark.gpu
def test_no_host_sync_after_warm_up() -> None:
    """Cached plans and device scalars: the passes never synchronise with the host (device-tensor
    loss scale, inverse scale and ``found_inf`` included)."""
    dev = torch.device("cuda")
    if not tk.is_available(dev)[0]:
        pytest.skip(tk.is_available(dev)[1])
    params = _rand(SHAPES, torch.float32, dev)
    grads = _rand(SHAPES, torch.float32, dev)
    out = [torch.empty_like(p) for p in params]
    bufs = [torch.empty_like(p) for p in params]
    lr = torch.tensor(0.1, device=dev)
    found_inf, loss_scale = torch.zeros(1, device=dev), torch.tensor(2.0**16, device=dev)
    logits, targets = torch.randn(8, 100, device=dev), torch.randint(0, 100, (8,), device=dev)
    tables = _tables(100, torch.float32, dev, "la")

    def step(first: bool) -> None:
        tk.focal_loss(logits, targets, **tables, grad_scale=loss_scale)
        norm = tk.sq_norm(grads).sqrt()
        tk.perturb(params, grads, out, norm, 0.05, inv_scale=1 / loss_scale)
        tk.sgd_step(
            params,
            grads,
            out,
            bufs,
            lr=lr,
            momentum=0.9,
            dampening=0.0,
            weight_decay=1e-4,
            nesterov=False,
            maximize=False,
            first_step=first,
            found_inf=found_inf,
        )

    step(True)
    step(False)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_kernels_compile_for_cuda() -> None:
    """Compile every kernel for sm_90 ahead of time (no GPU needed): catches what the interpreter
    accepts but the compiler rejects, and checks that full chunks use 16-byte accesses and that the
    per-element passes, compiled with the launches' ``enable_fp_fusion=False``, contain exactly the
    fused multiply-adds written in them (none in perturb; SGD's ``add(..., alpha=)``)."""
    script = textwrap.dedent(
        """
        import importlib
        import triton, triton.language as tl
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        mods = {m: importlib.import_module("focalsam_fast.kernels.triton." + m)
                for m in ("norm", "perturb", "sgd", "loss")}
        mt = ("*i64", "*i64", "i32")
        def build(fn, sig, const, fusion=True):
            sig = dict(zip(fn.arg_names, list(sig) + ["constexpr"] * len(const)))
            src = ASTSource(fn=fn, signature=sig, constexprs=const)
            options = {"num_warps": 8, "enable_fp_fusion": fusion}
            return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]
        f32 = dict(ACC=tl.float32, ALIGN=16, BLOCK=4096)
        ptx = [
            build(mods["norm"]._partials_kernel, mt + ("*fp32",),
                  dict(G_DT=tl.bfloat16, P_DT=tl.float32, ADAPTIVE=True, **f32)),
            build(mods["norm"]._sum_kernel, ("*fp64", "i32", "*fp64"), dict(BLOCK=1024)),
            build(mods["perturb"]._perturb_kernel, mt + ("*fp32",) * 3,
                  dict(EPS=1e-12, P_DT=tl.float32, G_DT=tl.float32, O_DT=tl.float32, ADAPTIVE=True, **f32),
                  fusion=False),
            build(mods["sgd"]._sgd_kernel, mt + ("*fp64",) * 4 + ("*fp32",),
                  dict(HAS_FOUND_INF=True, P_DT=tl.float64, G_DT=tl.float64, G2_DT=tl.float64,
                       B_DT=tl.float64, ACC=tl.float64, HAS_G2=True, HAS_WD=True, HAS_MOM=True, FIRST=False,
                       NESTEROV=True, MAXIMIZE=True, LR_TENSOR=False, B_LIST=3, ALIGN=16, BLOCK=4096),
                  fusion=False),
            build(mods["loss"]._focal_loss_kernel,
                  ("*bf16", "i64", "*i64") + ("*fp32",) * 6 + ("*bf16",) * 3 + ("i32", "i32"),
                  dict(HAS_WEIGHT=True, HAS_GRAD_SCALE=True, ACC=tl.float32, BLOCK_C=4096)),
        ]
        assert all("ld.global.v4.b32" in p for p in ptx[:1] + ptx[2:3]), "no 16-byte loads"
        assert "ld.global.v2.b64" in ptx[3], "no 16-byte fp64 loads"
        assert "fma" not in ptx[2], "perturb: a multiply-add was contracted (the reference rounds twice)"
        assert "fma.rn.f64" in ptx[3], "sgd_step: the reference's add(..., alpha=) is one fma"
        """
    )
    res = _run_python(script)
    if res.returncode and "ptxas" in res.stderr and "not found" in res.stderr.lower():
        pytest.skip("Triton's bundled ptxas is missing")
    assert res.returncode == 0, res.stderr[-4000:]
