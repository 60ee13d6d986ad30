"""Every optimizer built the same way for the reliability tests: a model, its optimizer, a batch and
the matching closure (per-sample losses; backbone features for CC-SAM)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM, kernels

COUNTS = [40, 12, 3]
METHODS = ("sam", "imbsam", "focal", "ccsam")
IMPLS_CPU = [i for i in ("reference", "foreach", "cpp", "triton") if kernels.availability(i, "cpu")[0]]


def model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


def make(method: str, net: nn.Module, impl: str = "auto", params: Any = None, **kw: Any):
    """The optimizer of ``method`` on ``net`` (SGD with momentum and weight decay)."""
    common = dict(rho=0.1, lr=0.05, momentum=0.9, weight_decay=1e-3, impl=impl, **kw)
    params = net.parameters() if params is None else params
    if method == "sam":
        return SAM(params, **common)
    if method == "imbsam":
        return ImbSAM(params, class_counts=COUNTS, tail_threshold=10, **common)
    if method == "focal":
        return FocalSAM(params, class_counts=COUNTS, gamma=2.0, lam=0.7, **common)
    return CCSAM(params, head=net[-1], class_counts=COUNTS, beta=0.5, noise_ratio=1e-2, **common)


def batch(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 6, dtype=torch.float64), torch.arange(n) % 3


def closure(
    method: str,
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    hook: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[], Any]:
    """The closure of ``method``; ``hook`` maps the logits (or features) of every forward."""
    hook = hook or (lambda t: t)
    if method == "ccsam":
        return lambda: hook(net[:-1](x))
    return lambda: F.cross_entropy(hook(net(x)), y, reduction="none")


def snapshot(net: nn.Module, opt) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Weights and momentum buffers, copied."""
    weights = [p.detach().clone() for p in net.parameters()]
    bufs = [opt.base_optimizer.state.get(p, {}).get("momentum_buffer") for p in net.parameters()]
    return weights, [None if b is None else b.clone() for b in bufs]


def assert_unchanged(net: nn.Module, opt, snap) -> None:
    """Weights and momentum bitwise as in ``snap``; no half-step state left in the optimizer."""
    weights, bufs = snap
    for p, w in zip(net.parameters(), weights):
        assert torch.equal(p, w)
    for p, b in zip(net.parameters(), bufs):
        now = opt.base_optimizer.state.get(p, {}).get("momentum_buffer")
        assert (now is None and b is None) or torch.equal(now, b)
    assert all(p.grad is None for p in net.parameters())
    assert not any("saved" in s or "stash" in s for s in opt.state.values())
    assert "stash" not in str(opt.state_dict()["state"])
