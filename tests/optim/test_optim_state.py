"""state_dict round trips, AMP skip semantics, rho schedules."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from focalsam_fast import SAM, ConstantRho, FocalSAM, MultiStepRho, TwoStepRho
from focalsam_fast.testing import SmallCNN

COUNTS = [300, 120, 40, 9, 2]


def _batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(12, 3, 5, 5), torch.randint(0, 5, (12,))) for _ in range(n)]


def _make(model: nn.Module, impl: str) -> FocalSAM:
    return FocalSAM(
        model.parameters(),
        class_counts=COUNTS,
        gamma=2.0,
        lam=0.8,
        rho=0.2,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-3,
        impl=impl,
    )


def _run(model: nn.Module, opt: FocalSAM, batches) -> None:
    for x, y in batches:
        opt.step(lambda: F.cross_entropy(model(x), y, reduction="none"), targets=y)


@pytest.mark.parametrize("impl", ["reference", "foreach"])
def test_resume_is_bitwise(impl: str, seed: int) -> None:
    batches = _batches(6)
    model = SmallCNN()
    start = copy.deepcopy(model.state_dict())
    opt = _make(model, impl)
    _run(model, opt, batches)
    straight = copy.deepcopy(model.state_dict())

    model2 = SmallCNN()
    model2.load_state_dict(start)
    opt2 = _make(model2, impl)
    _run(model2, opt2, batches[:3])
    buf = io.BytesIO()
    torch.save({"model": model2.state_dict(), "opt": opt2.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    model3 = SmallCNN()
    model3.load_state_dict(ckpt["model"])
    opt3 = _make(model3, impl)
    opt3.load_state_dict(ckpt["opt"])
    assert opt3.param_groups is opt3.base_optimizer.param_groups
    assert len(opt3.base_optimizer.state) > 0  # momentum buffers came back
    _run(model3, opt3, batches[3:])
    for k, v in straight.items():
        assert torch.equal(v, model3.state_dict()[k]), k


def test_load_state_dict_rejects_foreign() -> None:
    model = SmallCNN()
    opt = _make(model, "reference")
    with pytest.raises(KeyError, match="base_optimizer"):
        opt.load_state_dict(torch.optim.SGD(model.parameters(), lr=0.1).state_dict())


@pytest.mark.parametrize("where", ["g2", "h", "g1"])
def test_amp_overflow_skips_whole_step(where: str, seed: int) -> None:
    model = nn.Linear(4, 3)
    opt = FocalSAM(
        model.parameters(), class_counts=[30, 10, 2], gamma=1.0, lam=0.5, rho=0.1, lr=0.1, momentum=0.9
    )
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    opt.step(lambda: F.cross_entropy(model(x), y, reduction="none"), targets=y, grad_scaler=scaler)
    w = [p.detach().clone() for p in model.parameters()]
    bufs = [opt.base_optimizer.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    scale = scaler.get_scale()
    calls = {"n": 0}

    class Blow(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            return z.clone()

        @staticmethod
        def backward(ctx, g):
            calls["b"] = calls.get("b", 0) + 1
            target = {"g2": 1, "h": 2, "g1": 3}[where]
            return g * float("inf") if calls["b"] == target else g

    def closure():
        calls["n"] += 1
        return F.cross_entropy(Blow.apply(model(x)), y, reduction="none")

    opt.step(closure, targets=y, grad_scaler=scaler)
    for p, q in zip(model.parameters(), w):
        assert torch.equal(p, q)
    for p, b in zip(model.parameters(), bufs):
        assert torch.equal(opt.base_optimizer.state[p]["momentum_buffer"], b)
    assert scaler.get_scale() < scale  # one update, backed off


def test_bf16_autocast_step_runs(seed: int) -> None:
    model = SmallCNN()
    opt = _make(model, "reference")
    x, y = torch.randn(8, 3, 5, 5), torch.randint(0, 5, (8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = opt.step(lambda: F.cross_entropy(model(x), y, reduction="none"), targets=y)
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_rho_schedules() -> None:
    opt = SAM([{"params": [nn.Parameter(torch.randn(2))], "rho": 0.3}], lr=0.1)
    two = TwoStepRho(opt, (0.1, 0.2), epochs=10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["rho"])
        two.step()
    assert seen == [0.1] * 7 + [0.2] * 3  # e + 1 < 8 -> first value
    sd = two.state_dict()
    two2 = TwoStepRho(opt, (0.1, 0.2), epochs=10)
    two2.load_state_dict(sd)
    assert opt.param_groups[0]["rho"] == 0.2
    ms = MultiStepRho.saddle_longtail(opt)
    values = []
    for _ in range(200):
        values.append(opt.param_groups[0]["rho"])
        ms.step()
    assert values[:5] == [0.05] * 5 and values[5] == 0.1 and values[159] == 0.1
    assert values[160] == 0.5 and values[179] == 0.5 and values[180] == 0.6
    const = ConstantRho(opt)
    const.step()
    assert opt.param_groups[0]["rho"] == const.base_rhos[0]
    with pytest.raises(TypeError, match="rho"):
        ConstantRho(torch.optim.SGD([nn.Parameter(torch.randn(2))], lr=0.1))
