"""An independent, straightforward transcription of docs/spec.md §2-5 (functional, autograd.grad),
used only by the tests as the oracle for the optimizer classes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _sgd(
    params: list[Tensor], grads: list[Tensor], bufs: dict[int, Tensor], lr: float, momentum: float, wd: float
) -> None:
    with torch.no_grad():
        for i, (p, g) in enumerate(zip(params, grads)):
            d = g + wd * p
            if momentum:
                bufs[i] = d.clone() if i not in bufs else momentum * bufs[i] + d
                d = bufs[i]
            p.sub_(lr * d)


def _norm(vs: list[Tensor]) -> Tensor:
    return torch.sqrt(sum((v * v).sum() for v in vs))


def _perturbed(params: list[Tensor], eps: list[Tensor]) -> list[Tensor]:
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.add_(e)
    return saved


def _restore(params: list[Tensor], saved: list[Tensor]) -> None:
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)


def sam_like_step(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    bufs: dict[int, Tensor],
    *,
    w_keep: Tensor,
    w_sharp: Tensor,
    rho: float,
    lr: float,
    momentum: float,
    wd: float,
) -> None:
    """Focal-SAM form with per-sample weights: g = grad[sum w_keep l](w) + grad[sum w_sharp l](w+eps),
    eps along grad[sum w_sharp l](w).  SAM: w_keep = 0, w_sharp = 1; ImbSAM: head/tail masks."""
    params = [p for p in model.parameters() if p.requires_grad]
    b = x.shape[0]
    losses = F.cross_entropy(model(x), y, reduction="none")
    g_keep = torch.autograd.grad((w_keep * losses).sum() / b, params, retain_graph=True)
    h = torch.autograd.grad((w_sharp * losses).sum() / b, params)
    n = _norm(list(h))
    eps = [rho / (n + 1e-12) * v for v in h]
    saved = _perturbed(params, eps)
    losses2 = F.cross_entropy(model(x), y, reduction="none")
    g1 = torch.autograd.grad((w_sharp * losses2).sum() / b, params)
    _restore(params, saved)
    _sgd(params, [a + c for a, c in zip(g1, g_keep)], bufs, lr, momentum, wd)


def focal_weights(counts: list[int], y: Tensor, gamma: float, lam: float) -> Tensor:
    pi = torch.tensor(counts, dtype=torch.float64) / sum(counts)
    c = lam * (1 - pi) ** gamma
    return c[y].to(torch.get_default_dtype())


def ccsam_step(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    bufs: dict[int, Tensor],
    *,
    counts: list[int],
    nu: float,
    beta: float,
    lr: float,
    momentum: float,
    wd: float,
) -> None:
    """Official CC-SAM stage 1 (head = model.fc, per-tensor theta norm), docs/spec.md §5."""
    params = [p for p in model.parameters() if p.requires_grad]
    head = [model.fc.weight, model.fc.bias]
    k = sum(p.numel() for p in head)
    feats = model.features(x)
    losses = F.cross_entropy(model.fc(feats), y, reduction="none")
    pert = []
    for c in sorted(set(y.tolist())):
        idx = (y == c).nonzero().flatten()
        grads = torch.autograd.grad(losses[idx].mean(), head, retain_graph=True)
        moved = []
        for p, g in zip(head, grads):
            gn = g.norm()
            r = (
                nu
                * torch.sqrt(p.detach().norm())
                / torch.sqrt(gn)
                / math.sqrt(2)
                / max(counts[c] - 1, 1) ** 0.25
                / k**0.25
            )
            moved.append(p + (r * g / gn * math.sqrt(k)).detach())
        pert.append(F.cross_entropy(F.linear(feats[idx], moved[0], moved[1]), y[idx], reduction="none"))
    total = (1 - beta) * losses.mean() + beta * torch.cat(pert).mean()
    grads = torch.autograd.grad(total, params)
    _sgd(params, list(grads), bufs, lr, momentum, wd)
