"""Whole-step parity: every optimizer with every implementation of a device vs ``impl='reference'``
on the same device, 5 steps on a small CNN with BatchNorm.

Devices: the CPU (every impl available here) always; CUDA (``foreach``, ``cuda``, ``triton``) under
the ``gpu`` marker, run by stage 4 of ``benchmarks/gpu_check.sh``, where a CUDA impl that is not
available is a skip and so a failure.  Methods: SAM, ImbSAM, CC-SAM, Focal-SAM, and Focal-SAM with
``criterion=`` (the fused loss kernel) for a VS loss with class weights (scale, bias and weight
tables) and an LDAM loss (scale and margin tables).  Two variants per case: float32 with plain
momentum, and float64 with nesterov momentum (and adaptive SAM).  The whole-step model is
smooth (SiLU, see :class:`focalsam_fast.testing.SmallCNN`): with ReLU, 1 fp32 run in ~300 per case
failed by a factor of 600 when a pre-activation near 0 changed sign.  Tolerances: max relative weight
difference per tensor <= FP32_RTOL in fp32 (momentum buffers FP32_GRAD_RTOL), FP64_RTOL in float64
(all from :mod:`focalsam_fast.testing`).  On CUDA, TF32 is off and deterministic algorithms are
on (cuDNN included), so the model's own ops round alike in the two runs and only the optimizer
paths differ.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM, LDAMLoss, VSLoss, kernels
from focalsam_fast.testing import FP32_GRAD_RTOL, FP32_RTOL, FP64_RTOL, SmallCNN

COUNTS = [300, 120, 40, 9, 2]
METHODS = ("sam", "imbsam", "ccsam", "focalsam", "focalsam+vs", "focalsam+ldam")
VARIANTS = [
    pytest.param(torch.float32, False, id="fp32"),
    pytest.param(torch.float64, True, id="fp64-nesterov"),
]
CUDA_IMPLS = ("foreach", "cuda", "triton")
# The conv bias feeds BatchNorm: its exact gradient is 0 and the computed one is the round-off of a
# sum of O(1e-2) terms (~1e-8 in fp32), which differs between implementations (other summation
# orders).  Its momentum buffer is then mostly weight decay (~5e-4), so a per-tensor relative
# difference measures round-off against a tiny scale (measured up to 1.3e-4 in fp32 with the LDAM
# criterion, every other buffer <= 5e-7); it is compared on the scale of the model's largest buffer.
ROUNDOFF_GRADIENT = {"conv.bias"}
CASES = [
    pytest.param("cpu", name, id=f"cpu-{name}")
    for name in kernels.available_impls("cpu")
    if name != "reference"
]
CASES += [pytest.param("cuda", name, id=f"cuda-{name}", marks=pytest.mark.gpu) for name in CUDA_IMPLS]


@pytest.fixture
def device(request: pytest.FixtureRequest, impl: str) -> Iterator[torch.device]:
    """The case's device, after checking that ``impl`` is available there (on CUDA: TF32 off and
    deterministic cuDNN for the duration of the test)."""
    dev = torch.device(request.node.callspec.params["device_name"])
    ok, why = kernels.availability(impl, dev)
    if not ok:
        pytest.skip(f"impl {impl!r} is not available on {dev}: {why}")
    if dev.type != "cuda":
        yield dev
        return
    saved = (
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    saved_det = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield dev
    finally:
        (
            torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        ) = saved
        torch.use_deterministic_algorithms(saved_det[0], warn_only=saved_det[1])


def _criterion(method: str, device: torch.device) -> VSLoss | LDAMLoss | None:
    """One loss object, shared by the reference and the fused optimizer of a case."""
    if method == "focalsam+vs":
        return VSLoss(COUNTS, gamma=0.3, tau=1.0, weight=0.5 + torch.rand(len(COUNTS)), reduction="none").to(
            device
        )
    if method == "focalsam+ldam":
        return LDAMLoss(COUNTS, max_m=0.5, s=2.0, reduction="none").to(device)
    return None


def _optimizer(method: str, model: torch.nn.Module, impl: str, nesterov: bool, criterion=None):
    kw = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": nesterov, "impl": impl}
    if method == "sam":
        return SAM(model.parameters(), rho=0.3, adaptive=nesterov, **kw)
    if method.startswith("focalsam"):
        return FocalSAM(
            model.parameters(), class_counts=COUNTS, gamma=2.0, lam=0.7, rho=0.3, criterion=criterion, **kw
        )
    if method == "imbsam":
        return ImbSAM(model.parameters(), class_counts=COUNTS, tail_threshold=50, rho=0.3, **kw)
    return CCSAM(model.parameters(), head=model.fc, class_counts=COUNTS, noise_ratio=0.05, **kw)


def _closure(method: str, model, x, y):
    if method == "ccsam":
        return lambda: model.features(x)
    if method in ("focalsam+vs", "focalsam+ldam"):
        return lambda: model(x)  # logits: the fused loss kernel computes losses and gradients
    return lambda: F.cross_entropy(model(x), y, reduction="none")


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| per tensor (element-wise ratios blow up near zero entries)."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize(("dtype", "nesterov"), VARIANTS)
@pytest.mark.parametrize(("device_name", "impl"), CASES)
@pytest.mark.parametrize("method", METHODS)
def test_fused_step_matches_reference(
    method: str,
    device_name: str,
    impl: str,
    device: torch.device,
    dtype: torch.dtype,
    nesterov: bool,
    seed: int,
) -> None:
    ref_model = SmallCNN(num_classes=len(COUNTS), smooth=True).to(device, dtype)
    model = copy.deepcopy(ref_model)
    criterion = _criterion(method, device)
    ref_opt = _optimizer(method, ref_model, "reference", nesterov, criterion)
    opt = _optimizer(method, model, impl, nesterov, criterion)
    assert opt.impl == impl
    for _ in range(5):
        x = torch.randn(16, 3, 5, 5, dtype=dtype, device=device)
        y = torch.randint(0, len(COUNTS), (16,), device=device)
        ref_opt.step(_closure(method, ref_model, x, y), targets=y)
        opt.step(_closure(method, model, x, y), targets=y)
    tol = FP64_RTOL if dtype == torch.float64 else FP32_RTOL
    for (name, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
        if a.is_floating_point():
            assert _max_rel(a, b) <= tol, f"{name}: {_max_rel(a, b):.3g} > {tol} (seed {seed})"
    bufs = {n: opt.base_optimizer.state[p]["momentum_buffer"] for n, p in model.named_parameters()}
    ref_bufs = {
        n: ref_opt.base_optimizer.state[p]["momentum_buffer"] for n, p in ref_model.named_parameters()
    }
    largest = max(float(b.abs().max()) for b in ref_bufs.values())
    buf_tol = FP64_RTOL if dtype == torch.float64 else FP32_GRAD_RTOL
    for name, buf in bufs.items():
        ref_buf = ref_bufs[name]
        scale = largest if name in ROUNDOFF_GRADIENT else float(ref_buf.abs().max())
        err = float((buf - ref_buf).abs().max()) / max(scale, 1e-12)
        assert err <= buf_tol, f"{name} momentum: {err:.3g} > {buf_tol} (seed {seed})"


@pytest.mark.parametrize(("device_name", "impl"), CASES)
@pytest.mark.parametrize("method", ["sam", "focalsam"])
def test_other_base_optimizer_matches_reference(
    method: str, device_name: str, impl: str, device: torch.device, seed: int
) -> None:
    """AdamW as the base: the fused paths combine ``g1 + g2`` in one multi-tensor add and then run
    AdamW's own step; 5 steps in float64 match the per-tensor reference.

    ``eps=1e-4``: the conv bias feeds BatchNorm, so its exact gradient is 0 and the computed one
    is round-off (~1e-17) that differs between implementations (the norms sum in other orders).
    With the default eps=1e-8, Adam's m / (sqrt(v) + eps) scales that noise up to O(lr) updates;
    eps=1e-4 keeps the step Lipschitz in g there (noise stays ~1e-13) and changes nothing for
    gradients >> 1e-4."""
    ref_model = SmallCNN(num_classes=len(COUNTS)).to(device, torch.float64)
    model = copy.deepcopy(ref_model)
    kw = {"lr": 1e-2, "weight_decay": 1e-2, "eps": 1e-4, "rho": 0.3}
    if method == "focalsam":
        kw |= {"class_counts": COUNTS, "gamma": 2.0, "lam": 0.7}
    cls = FocalSAM if method == "focalsam" else SAM
    ref_opt = cls(ref_model.parameters(), torch.optim.AdamW, impl="reference", **kw)
    opt = cls(model.parameters(), torch.optim.AdamW, impl=impl, **kw)
    for _ in range(5):
        x = torch.randn(16, 3, 5, 5, dtype=torch.float64, device=device)
        y = torch.randint(0, len(COUNTS), (16,), device=device)
        ref_opt.step(_closure(method, ref_model, x, y), targets=y)
        opt.step(_closure(method, model, x, y), targets=y)
    for (name, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
        if a.is_floating_point():
            assert _max_rel(a, b) <= FP64_RTOL, f"{name}: {_max_rel(a, b):.3g} (seed {seed})"
    assert all(len(opt.base_optimizer.state[p]) > 0 for p in model.parameters())


def test_explicit_unavailable_impl_raises_clear_error() -> None:
    missing = [n for n in kernels.IMPLS if not kernels.availability(n, "cpu")[0]]
    if not missing:
        pytest.skip("every implementation is available here")
    with pytest.raises(kernels.ImplUnavailableError, match=f"impl={missing[0]!r} is not available"):
        SAM(SmallCNN().parameters(), lr=0.1, impl=missing[0])


def test_auto_picks_and_reports_an_impl() -> None:
    opt = SAM(SmallCNN().parameters(), lr=0.1)
    assert opt.impl == kernels.resolve("auto", "cpu")
    assert opt.impl in ("cpp", "reference")


@pytest.mark.gpu
def test_auto_picks_cuda_on_a_gpu() -> None:
    """With the CUDA module built, ``impl='auto'`` runs the CUDA kernels for CUDA parameters."""
    opt = SAM(SmallCNN().cuda().parameters(), lr=0.1)
    assert opt.impl == "cuda", kernels.availability("cuda", "cuda")
