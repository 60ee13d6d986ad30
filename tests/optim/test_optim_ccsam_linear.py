"""CC-SAM's closed-form linear-head path (fused impls) equals the official per-class perturbed
weights (impl='reference') in float64, with a perturbation large enough to matter."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from focalsam_fast import CCSAM, LDAMLoss, kernels
from focalsam_fast.models import NormedLinear
from focalsam_fast.testing import FP64_ATOL, FP64_RTOL

# the closed form is Python shared by every fused impl: one of them stands for all
FUSED = [next(i for i in ("cpp", "foreach") if kernels.availability(i, "cpu")[0])]
COUNTS = [50, 20, 9, 4, 2, 1, 1]


def _run(impl: str, net: nn.Sequential, steps: int, **kw) -> list[torch.Tensor]:
    opt = CCSAM(
        net.parameters(),
        head=net[-1],
        class_counts=COUNTS,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-3,
        impl=impl,
        **kw,
    )
    gen = torch.Generator().manual_seed(5)
    for _ in range(steps):
        x = torch.randn(13, 5, dtype=torch.float64, generator=gen)
        y = torch.randint(0, len(COUNTS), (13,), generator=gen)
        opt.step(lambda x=x: net[:-1](x), targets=y)
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize("param_norm", ["tensor", "global"])
@pytest.mark.parametrize("bias", ["with", "without", "frozen"])
def test_closed_form_matches_per_class_weights(impl: str, param_norm: str, bias: str) -> None:
    head = nn.Linear(6, len(COUNTS), bias=bias != "without")
    net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), head).double()
    if bias == "frozen":
        net[-1].bias.requires_grad_(False)
    ref_net, flat_net = copy.deepcopy(net), copy.deepcopy(net)
    kw = dict(beta=0.6, param_norm=param_norm)
    got = _run(impl, net, 4, noise_ratio=0.5, **kw)
    want = _run("reference", ref_net, 4, noise_ratio=0.5, **kw)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=FP64_RTOL, atol=FP64_ATOL)
    unperturbed = _run("reference", flat_net, 4, noise_ratio=0.0, **kw)  # the perturbation matters
    assert max((a - b).abs().max().item() for a, b in zip(want, unperturbed)) > 1e-4


def test_other_heads_keep_the_generic_path() -> None:
    """A cosine head (LDAM) is not linear in its weight: the fused impls use the per-class path."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), NormedLinear(6, len(COUNTS))).double()
    ref_net = copy.deepcopy(net)
    crit = lambda z, y: LDAMLoss(COUNTS, reduction="none").double()(z, y)  # noqa: E731
    got = _run(FUSED[0], net, 2, noise_ratio=0.5, criterion=crit)
    want = _run("reference", ref_net, 2, noise_ratio=0.5, criterion=crit)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=FP64_RTOL, atol=FP64_ATOL)
