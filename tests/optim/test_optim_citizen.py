"""The optimizers as normal torch.optim citizens (issue 10, class 2): add_param_group, deepcopy and
pickle round trips, and parameters the fused kernels cannot take (per-group fallback under 'auto',
a clear error for an explicit fused impl)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from method_cases import COUNTS, IMPLS_CPU, METHODS, batch, closure, make, model
from torch import nn

from focalsam_fast import FocalSAM, LALoss, kernels
from focalsam_fast.testing import tolerances

FUSED_CPU = [i for i in IMPLS_CPU if i in kernels.FUSED]
# whole-step behaviour is impl-independent Python; one fused impl stands for all (the Triton
# interpreter is slow), the parity suite covers every impl's arithmetic
QUICK = [i for i in ("reference", "cpp") if i in IMPLS_CPU]


def _steps(method: str, net: nn.Module, opt, n: int = 3, seed: int = 11) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(12, 6, dtype=torch.float64, generator=gen)
        y = torch.arange(12) % 3
        opt.step(closure(method, net, x, y), targets=y)
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("impl", QUICK)
@pytest.mark.parametrize("method", METHODS)
def test_add_param_group_then_step(method: str, impl: str) -> None:
    """Adding the last layer as a second group later equals building with both groups."""
    torch.manual_seed(3)
    net_a = model()
    net_b = copy.deepcopy(net_a)
    head_lr = {"lr": 0.02, "rho": 0.05}
    opt_a = make(
        method,
        net_a,
        impl,
        params=[{"params": net_a[:-1].parameters()}, {"params": net_a[-1].parameters(), **head_lr}],
    )
    opt_b = make(method, net_b, impl, params=net_b[:-1].parameters())
    opt_b.add_param_group({"params": net_b[-1].parameters(), **head_lr})
    assert opt_b.impl == opt_a.impl
    for a, b in zip(_steps(method, net_a, opt_a), _steps(method, net_b, opt_b)):
        assert torch.equal(a, b)
    assert len(opt_b.base_optimizer.param_groups) == 2
    assert opt_b.base_optimizer.param_groups[1] is opt_b.param_groups[1]


def test_add_param_group_validates() -> None:
    net = model()
    opt = make("focal", net, params=net[:-1].parameters())
    with pytest.raises(ValueError, match="lr of param group 1 must be a finite number >= 0, got nan"):
        opt.add_param_group({"params": net[-1].parameters(), "lr": float("nan")})
    with pytest.raises(ValueError, match="rho of param group 1"):
        opt.add_param_group({"params": net[-1].parameters(), "rho": -1.0})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("impl", QUICK)
@pytest.mark.parametrize("method", METHODS)
def test_copies_step_identically(method: str, impl: str, how: str) -> None:
    net = model()
    opt = make(method, net, impl)
    _steps(method, net, opt, n=2, seed=1)
    net2, opt2 = copy.deepcopy((net, opt)) if how == "deepcopy" else pickle.loads(pickle.dumps((net, opt)))
    assert type(opt2) is type(opt) and opt2.impl == opt.impl
    assert opt2.check_inputs == opt.check_inputs
    assert opt2.base_optimizer.param_groups is opt2.param_groups
    assert all(p2 is q2 for p2, q2 in zip(opt2.param_groups[0]["params"], net2.parameters()))
    for a, b in zip(_steps(method, net, opt), _steps(method, net2, opt2)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_keeps_the_fused_loss_criterion(how: str) -> None:
    net = model()
    opt = FocalSAM(
        net.parameters(),
        class_counts=COUNTS,
        gamma=2.0,
        lam=0.7,
        rho=0.1,
        lr=0.05,
        momentum=0.9,
        criterion=LALoss(COUNTS, reduction="none"),
    )
    x, y = batch()
    opt.step(lambda: net(x), targets=y)
    net2, opt2 = copy.deepcopy((net, opt)) if how == "deepcopy" else pickle.loads(pickle.dumps((net, opt)))
    assert isinstance(opt2.criterion, LALoss) and torch.equal(opt2.coefficients, opt.coefficients)
    opt.step(lambda: net(x), targets=y)
    opt2.step(lambda: net2(x), targets=y)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters()))


def test_copy_mid_stage_is_refused() -> None:
    net, (x, y) = model(), batch()
    opt = make("sam", net)
    F.cross_entropy(net(x), y).backward()
    opt.first_step()
    with pytest.raises(RuntimeError, match=r"middle of a stage-by-stage step.*abort"):
        copy.deepcopy(opt)


def _transposed_model() -> nn.Sequential:
    net = model()
    net[0].weight = nn.Parameter(net[0].weight.detach().t().contiguous().t())  # a transposed layout
    assert not net[0].weight.is_contiguous()
    return net


@pytest.mark.parametrize("impl", FUSED_CPU)
def test_non_dense_parameter(impl: str) -> None:
    """'auto' runs the group on the fallback (and says so); an explicit fused impl refuses it."""
    with pytest.raises(
        ValueError,
        match=rf"impl='{impl}' cannot run param group 0: parameter 0 "
        r"\(shape \(8, 6\)\) has strides \(1, 8\)",
    ):
        make("focal", _transposed_model(), impl)
    torch.manual_seed(5)
    net = _transposed_model()
    ref_net = copy.deepcopy(net)
    rest = [p for p in net.parameters() if p is not net[0].weight]
    groups = [{"params": [net[0].weight]}, {"params": rest}]
    opt = make("focal", net, "auto", params=groups)
    if kernels.resolve("auto", "cpu") in kernels.FUSED:
        assert opt.impl == f"reference,{kernels.resolve('auto', 'cpu')}"
        assert "strides (1, 8)" in opt.impl_fallbacks[0] and 1 not in opt.impl_fallbacks
    ref = make("focal", ref_net, "reference")
    for a, b in zip(_steps("focal", net, opt), _steps("focal", ref_net, ref)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("impl", FUSED_CPU)
def test_mixed_dtype_group(impl: str) -> None:
    net = model()
    net[-1].bias = nn.Parameter(net[-1].bias.detach().float())
    with pytest.raises(ValueError, match=r"has dtype torch\.float32.*one of"):
        make("sam", net, impl)
    assert make("sam", net, "auto").impl_fallbacks


def _embedding_net() -> nn.Module:
    return nn.Sequential(nn.Embedding(10, 4, sparse=True), nn.Linear(4, 3))


def test_sparse_gradients() -> None:
    """A sparse gradient moves its group to 'reference' under 'auto' (same result as reference);
    an explicit fused impl raises naming the gradient."""
    idx, y = torch.randint(0, 10, (8,)), torch.arange(8) % 3
    results = []
    for impl in ("auto", "reference"):
        torch.manual_seed(9)
        net = _embedding_net()
        opt = FocalSAM(
            [{"params": net[0].parameters()}, {"params": net[1].parameters()}],
            class_counts=COUNTS,
            rho=0.1,
            lr=0.1,
            impl=impl,
        )
        for _ in range(2):
            opt.step(lambda net=net: F.cross_entropy(net(idx), y, reduction="none"), targets=y)
        results.append([p.detach().clone() for p in net.parameters()])
        if impl == "auto" and kernels.resolve("auto", "cpu") != "reference":
            assert opt.impl.startswith("reference,") and "sparse" in opt.impl_fallbacks[0]
    for a, b in zip(*results):  # the dense group ran a fused impl: norm summation order differs
        torch.testing.assert_close(a, b, **tolerances(a.dtype))
    for impl in FUSED_CPU:
        net = _embedding_net()
        opt = FocalSAM(net.parameters(), class_counts=COUNTS, rho=0.1, lr=0.1, impl=impl)
        w = [p.detach().clone() for p in net.parameters()]
        with pytest.raises(ValueError, match=rf"impl='{impl}' cannot run param group 0: gradient 0.*sparse"):
            opt.step(lambda net=net: F.cross_entropy(net(idx), y, reduction="none"), targets=y)
        assert all(torch.equal(p, q) for p, q in zip(net.parameters(), w))
