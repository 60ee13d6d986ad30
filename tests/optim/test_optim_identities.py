"""Edge cases and identities of docs/spec.md §2-5."""

from __future__ import annotations

import copy
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM
from focalsam_fast.testing import SmallCNN

COUNTS = [300, 120, 40, 9, 2]


def _data(b: int = 16, classes: int = 5):
    return torch.randn(b, 3, 5, 5), torch.randint(0, classes, (b,))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("impl", ["reference", "foreach"])
def test_gamma0_lam1_bitwise_sam(impl: str, seed: int) -> None:
    a = SmallCNN()
    b = copy.deepcopy(a)
    kw = {"rho": 0.2, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "impl": impl}
    sam = SAM(a.parameters(), **kw)
    focal = FocalSAM(b.parameters(), class_counts=COUNTS, gamma=0.0, lam=1.0, **kw)
    for _ in range(4):
        x, y = _data()
        sam.step(lambda: F.cross_entropy(a(x), y, reduction="none"), targets=y)
        focal.step(lambda: F.cross_entropy(b(x), y, reduction="none"), targets=y)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), f"{k} differs (seed {seed})"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lam0_is_sgd_and_finite(dtype: torch.dtype, seed: int) -> None:
    lin = nn.Linear(6, 4).to(dtype)
    ref = copy.deepcopy(lin)
    focal = FocalSAM(
        lin.parameters(), class_counts=[50, 20, 5, 1], gamma=2.0, lam=0.0, rho=0.5, lr=0.1, momentum=0.9
    )
    sgd = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        x = torch.randn(8, 6, dtype=dtype)
        y = torch.randint(0, 4, (8,))
        focal.step(lambda: F.cross_entropy(lin(x).float(), y, reduction="none"), targets=y)
        sgd.zero_grad()
        F.cross_entropy(ref(x).float(), y, reduction="none").mean().backward()
        sgd.step()
    for p, q in zip(lin.parameters(), ref.parameters()):
        assert torch.isfinite(p).all()
        # 16-bit: the weighted sum (1 - 0) * l / B rounds differently from mean(l) (eps 8e-3 in bf16)
        low = dtype != torch.float32
        torch.testing.assert_close(p, q, rtol=2e-2 if low else 1e-6, atol=1e-3 if low else 1e-6)


@pytest.mark.parametrize("impl", ["reference", "foreach"])
def test_eps_norm_is_rho_over_all_trainable(impl: str, seed: int) -> None:
    model = SmallCNN()
    model.conv.bias.requires_grad_(False)  # frozen
    unused = nn.Parameter(torch.randn(3))
    frozen_before = model.conv.bias.detach().clone()
    unused_before = unused.detach().clone()
    params = [
        {"params": [model.conv.weight, unused]},
        {"params": [model.bn.weight, model.bn.bias, model.fc.weight, model.fc.bias, model.conv.bias]},
    ]
    opt = SAM(params, rho=0.37, lr=0.1, impl=impl)
    x, y = _data()
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    F.cross_entropy(model(x), y).backward()
    opt.first_step()
    sq = sum(((p.detach() - w0[n]) ** 2).sum() for n, p in model.named_parameters())
    assert abs(sq.sqrt().item() - 0.37) < 1e-6
    assert torch.equal(model.conv.bias, frozen_before)
    assert torch.equal(unused, unused_before)
    F.cross_entropy(model(x), y).backward()
    opt.second_step()
    assert torch.equal(model.conv.bias, frozen_before) and torch.equal(unused, unused_before)
    assert unused not in opt.state and model.conv.bias not in opt.base_optimizer.state


def test_param_with_grad_in_one_pass_only_is_restored(seed: int) -> None:
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    opt = FocalSAM(
        list(a.parameters()) + list(b.parameters()),
        class_counts=[5, 3, 1],
        gamma=1.0,
        lam=0.5,
        rho=0.3,
        lr=0.0,
    )
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
    calls = {"n": 0}
    w_b = [p.detach().clone() for p in b.parameters()]

    def closure():
        calls["n"] += 1
        # b contributes only at w (first forward): it is perturbed but gets no grad at w + eps
        out = a(x) + (b(x) if calls["n"] == 1 else 0.0)
        return F.cross_entropy(out, y, reduction="none")

    opt.step(closure, targets=y)
    for p, q in zip(b.parameters(), w_b):
        assert torch.equal(p, q)  # lr = 0: restored exactly, not left perturbed


def test_single_class_batch_identity(seed: int) -> None:
    torch.set_default_dtype(torch.float64)
    try:
        lin = nn.Linear(5, 3)
        ref = copy.deepcopy(lin)
        counts, gamma, lam, rho = [40, 10, 3], 1.5, 0.7, 0.2
        x, y = torch.randn(7, 5), torch.full((7,), 2)
        FocalSAM(lin.parameters(), class_counts=counts, gamma=gamma, lam=lam, rho=rho, lr=0.1).step(
            lambda: F.cross_entropy(lin(x), y, reduction="none"), targets=y
        )
        c = lam * (1 - 3 / 53) ** gamma
        params = list(ref.parameters())
        g_w = torch.autograd.grad(F.cross_entropy(ref(x), y), params)
        n = torch.sqrt(sum((g * g).sum() for g in g_w))
        with torch.no_grad():
            saved = [p.clone() for p in params]
            for p, g in zip(params, g_w):
                p.add_(rho * g / (n + 1e-12))
        g_e = torch.autograd.grad(F.cross_entropy(ref(x), y), params)
        with torch.no_grad():
            for p, s, gw, ge in zip(params, saved, g_w, g_e):
                p.copy_(s - 0.1 * ((1 - c) * gw + c * ge))
        for p, q in zip(lin.parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


def test_param_groups_with_different_rho(seed: int) -> None:
    lin1, lin2 = nn.Linear(4, 4), nn.Linear(4, 3)
    opt = SAM([{"params": lin1.parameters(), "rho": 0.1}, {"params": lin2.parameters(), "rho": 0.4}], lr=0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    F.cross_entropy(lin2(lin1(x)), y).backward()
    grads = [p.grad.clone() for p in list(lin1.parameters()) + list(lin2.parameters())]
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    before = [p.detach().clone() for p in list(lin1.parameters()) + list(lin2.parameters())]
    opt.first_step()
    after = list(lin1.parameters()) + list(lin2.parameters())
    for k, (p, w, g) in enumerate(zip(after, before, grads)):
        rho = 0.1 if k < 2 else 0.4
        torch.testing.assert_close(p.detach() - w, rho * g / (norm + 1e-12), rtol=1e-5, atol=1e-7)


class _Counter(torch.autograd.Function):
    calls: ClassVar[dict[str, int]] = {"fwd": 0, "bwd": 0}

    @staticmethod
    def forward(ctx, x):
        _Counter.calls["fwd"] += 1
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        _Counter.calls["bwd"] += 1
        return g


@pytest.mark.parametrize(("cls", "fwd", "bwd"), [(SAM, 2, 2), (FocalSAM, 2, 3), (ImbSAM, 2, 3)])
def test_pass_counts(cls, fwd: int, bwd: int) -> None:
    lin = nn.Linear(4, 3)
    kw = {} if cls is SAM else {"class_counts": [50, 10, 2]}
    if cls is ImbSAM:
        kw["tail_threshold"] = 20
    opt = cls(lin.parameters(), rho=0.1, lr=0.1, **kw)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    _Counter.calls.update(fwd=0, bwd=0)
    opt.step(lambda: F.cross_entropy(_Counter.apply(lin(x)), y, reduction="none"), targets=y)
    assert _Counter.calls == {"fwd": fwd, "bwd": bwd}


def test_imbsam_empty_tail_is_sgd(seed: int) -> None:
    lin = nn.Linear(4, 3)
    ref = copy.deepcopy(lin)
    opt = ImbSAM(lin.parameters(), class_counts=[50, 30, 2], tail_threshold=20, rho=0.5, lr=0.1, momentum=0.9)
    sgd = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))  # no class-2 (tail) sample
        opt.step(lambda: F.cross_entropy(lin(x), y, reduction="none"), targets=y)
        sgd.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        sgd.step()
    for p, q in zip(lin.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_imbsam_all_tail_weight1_is_sam(seed: int) -> None:
    a = SmallCNN(num_classes=3, smooth=True)  # fp32 steps that round differently (see SmallCNN)
    b = copy.deepcopy(a)
    kw = {"rho": 0.2, "lr": 0.1, "momentum": 0.9}
    imb = ImbSAM(a.parameters(), class_counts=[5, 3, 1], tail_threshold=20, tail_weight=1.0, **kw)
    sam = SAM(b.parameters(), **kw)
    for _ in range(3):
        x, y = _data(classes=3)
        imb.step(lambda: F.cross_entropy(a(x), y, reduction="none"), targets=y)
        sam.step(lambda: F.cross_entropy(b(x), y, reduction="none"))
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kw", [{"noise_ratio": 0.0}, {"beta": 0.0}])
def test_ccsam_degenerates_to_sgd(kw: dict, seed: int) -> None:
    a = SmallCNN(smooth=True)  # fp32 steps that round differently (see SmallCNN)
    b = copy.deepcopy(a)
    opt = CCSAM(
        a.parameters(),
        head=a.fc,
        class_counts=COUNTS,
        lr=0.1,
        momentum=0.9,
        **{"noise_ratio": 0.1, "beta": 0.5, **kw},
    )
    sgd = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        x, y = _data()
        opt.step(lambda: a.features(x), targets=y)
        sgd.zero_grad()
        F.cross_entropy(b(x), y).backward()
        sgd.step()
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_ccsam_radius_ratio_and_guard(seed: int) -> None:
    torch.set_default_dtype(torch.float64)
    try:
        head = nn.Linear(4, 3)
        opt = CCSAM(head.parameters(), head=head, class_counts=[101, 17, 1], noise_ratio=1e-3, lr=0.1)
        params = list(head.parameters())
        g = [torch.randn_like(p) for p in params]
        e_a = opt.class_perturbation(g, params, 101)
        e_b = opt.class_perturbation(g, params, 17)
        for ea, eb in zip(e_a, e_b):  # radius ∝ (n_c - 1)^(-1/4)
            torch.testing.assert_close(ea.norm() / eb.norm(), torch.tensor((16 / 100) ** 0.25))
        e_1 = opt.class_perturbation(g, params, 1)  # n_c = 1 guarded: finite, as n_c = 2
        e_2 = opt.class_perturbation(g, params, 2)
        for e1, e2 in zip(e_1, e_2):
            assert torch.isfinite(e1).all()
            torch.testing.assert_close(e1, e2)
        g4 = [4 * v for v in g]  # radius ∝ ||g||^(-1/2)
        for ea, e4 in zip(e_a, opt.class_perturbation(g4, params, 101)):
            torch.testing.assert_close(ea.norm() / e4.norm(), torch.tensor(2.0))
    finally:
        torch.set_default_dtype(torch.float32)


def test_ccsam_perturbs_only_head_and_restores(seed: int) -> None:
    model = SmallCNN()
    opt = CCSAM(model.parameters(), head=model.fc, class_counts=COUNTS, noise_ratio=0.5, lr=0.0)
    before = _state(model)
    seen: list[dict[str, torch.Tensor]] = []
    x, y = _data()

    def closure():
        seen.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return model.features(x)

    opt.step(closure, targets=y)
    assert len(seen) == 1  # backbone runs once; head perturbations use functional_call
    for k, v in model.named_parameters():
        assert torch.equal(v, before[k]), k


def test_ccsam_all_weights_form_runs(seed: int) -> None:
    model = SmallCNN()
    opt = CCSAM(
        model.parameters(), head=model.fc, class_counts=COUNTS, noise_ratio=0.05, perturb="all", lr=0.1
    )
    x, y = _data()
    calls = {"n": 0}

    def closure():
        calls["n"] += 1
        return model.features(x)

    w0 = [p.detach().clone() for p in model.parameters()]
    out = opt.step(closure, targets=y)
    assert calls["n"] == 1 + len(set(y.tolist()))
    assert torch.isfinite(out.loss)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), w0))


@pytest.mark.parametrize("loss_name", ["ce", "la", "ldam", "vs"])
def test_fused_loss_criterion_matches_closure_losses(loss_name: str, seed: int) -> None:
    from focalsam_fast.losses import LOSSES

    torch.set_default_dtype(torch.float64)
    try:
        crit = LOSSES[loss_name](COUNTS, reduction="none")
        a = SmallCNN()
        b = copy.deepcopy(a)
        kw = {"class_counts": COUNTS, "gamma": 1.5, "lam": 0.8, "rho": 0.2, "lr": 0.1, "momentum": 0.9}
        plain = FocalSAM(a.parameters(), **kw)
        fused = FocalSAM(b.parameters(), criterion=crit, **kw)
        for _ in range(3):
            x, y = _data()
            out_a = plain.step(lambda: crit(a(x), y), targets=y)
            out_b = fused.step(lambda: b(x), targets=y)
            torch.testing.assert_close(out_a.loss, out_b.loss, rtol=1e-9, atol=1e-9)
        for p, q in zip(a.state_dict().values(), b.state_dict().values()):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-9)
    finally:
        torch.set_default_dtype(torch.float32)
