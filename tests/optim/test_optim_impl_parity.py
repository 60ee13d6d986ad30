"""Whole-step parity: every optimizer with every implementation available here vs ``reference``,
5 steps on a small CNN with BatchNorm (max relative weight difference <= FP32_RTOL in fp32;
FP64 tolerances in float64)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM, kernels
from focalsam_fast.testing import FP32_GRAD_RTOL, FP32_RTOL, FP64_RTOL, SmallCNN

COUNTS = [300, 120, 40, 9, 2]
FUSED = [name for name in kernels.available_impls("cpu") if name != "reference"]


def _optimizer(method: str, model: torch.nn.Module, impl: str, nesterov: bool):
    kw = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": nesterov, "impl": impl}
    if method == "sam":
        return SAM(model.parameters(), rho=0.3, adaptive=nesterov, **kw)
    if method == "focalsam":
        return FocalSAM(model.parameters(), class_counts=COUNTS, gamma=2.0, lam=0.7, rho=0.3, **kw)
    if method == "imbsam":
        return ImbSAM(model.parameters(), class_counts=COUNTS, tail_threshold=50, rho=0.3, **kw)
    return CCSAM(model.parameters(), head=model.fc, class_counts=COUNTS, noise_ratio=0.05, **kw)


def _closure(method: str, model, x, y):
    if method == "ccsam":
        return lambda: model.features(x)
    return lambda: F.cross_entropy(model(x), y, reduction="none")


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| per tensor (element-wise ratios blow up near zero entries)."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.mark.skipif(not FUSED, reason="no fused implementation is available on this machine")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("method", ["sam", "focalsam", "imbsam", "ccsam"])
def test_fused_step_matches_reference(method: str, impl: str, nesterov: bool, dtype: torch.dtype,
                                      seed: int) -> None:
    ref_model = SmallCNN(num_classes=len(COUNTS)).to(dtype)
    model = copy.deepcopy(ref_model)
    ref_opt = _optimizer(method, ref_model, "reference", nesterov)
    opt = _optimizer(method, model, impl, nesterov)
    assert opt.impl == impl
    for _ in range(5):
        x = torch.randn(16, 3, 5, 5, dtype=dtype)
        y = torch.randint(0, len(COUNTS), (16,))
        ref_opt.step(_closure(method, ref_model, x, y), targets=y)
        opt.step(_closure(method, model, x, y), targets=y)
    tol = FP64_RTOL if dtype == torch.float64 else FP32_RTOL
    for (name, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
        if a.is_floating_point():
            assert _max_rel(a, b) <= tol, f"{name}: {_max_rel(a, b):.3g} > {tol} (seed {seed})"
    for p in model.parameters():
        buf = opt.base_optimizer.state[p]["momentum_buffer"]
        ref_buf = ref_opt.base_optimizer.state[ref_model.get_parameter(
            next(n for n, q in model.named_parameters() if q is p))]["momentum_buffer"]
        assert _max_rel(buf, ref_buf) <= (FP64_RTOL if dtype == torch.float64 else FP32_GRAD_RTOL)


@pytest.mark.skipif(not FUSED, reason="no fused implementation is available on this machine")
@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("method", ["sam", "focalsam"])
def test_other_base_optimizer_matches_reference(method: str, impl: str, seed: int) -> None:
    """AdamW as the base: the fused paths combine ``g1 + g2`` in one multi-tensor add and then run
    AdamW's own step; 5 steps in float64 match the per-tensor reference.

    ``eps=1e-4``: the conv bias feeds BatchNorm, so its exact gradient is 0 and the computed one
    is round-off (~1e-17) that differs between implementations (the norms sum in other orders).
    With the default eps=1e-8, Adam's m / (sqrt(v) + eps) scales that noise up to O(lr) updates;
    eps=1e-4 keeps the step Lipschitz in g there (noise stays ~1e-13) and changes nothing for
    gradients >> 1e-4."""
    ref_model = SmallCNN(num_classes=len(COUNTS)).double()
    model = copy.deepcopy(ref_model)
    kw = {"lr": 1e-2, "weight_decay": 1e-2, "eps": 1e-4, "rho": 0.3}
    if method == "focalsam":
        kw |= {"class_counts": COUNTS, "gamma": 2.0, "lam": 0.7}
    cls = FocalSAM if method == "focalsam" else SAM
    ref_opt = cls(ref_model.parameters(), torch.optim.AdamW, impl="reference", **kw)
    opt = cls(model.parameters(), torch.optim.AdamW, impl=impl, **kw)
    for _ in range(5):
        x, y = torch.randn(16, 3, 5, 5, dtype=torch.float64), torch.randint(0, len(COUNTS), (16,))
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
