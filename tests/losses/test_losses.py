"""Losses of docs/spec.md §6 against their published formulas, and the fused-loss tables."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from focalsam_fast.kernels import reference
from focalsam_fast.losses import CELoss, LALoss, LDAMLoss, NormedLinear, VSLoss, drw_weights

COUNTS = [500, 120, 30, 7]


def _inputs(b: int = 9):
    return torch.randn(b, 4, dtype=torch.float64), torch.randint(0, 4, (b,))


def test_la_formula(seed: int) -> None:
    z, y = _inputs()
    pi = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    want = F.cross_entropy(z + torch.log(pi + 1e-9), y, reduction="none")
    torch.testing.assert_close(LALoss(COUNTS, reduction="none")(z, y), want, rtol=1e-6, atol=1e-6)


def test_ldam_formula(seed: int) -> None:
    z, y = _inputs()
    m = torch.tensor([n**-0.25 for n in COUNTS], dtype=torch.float64)
    m = m * 0.5 / m.max()
    adj = z.clone()
    adj[torch.arange(len(y)), y] -= m[y]
    want = F.cross_entropy(30 * adj, y, reduction="none")
    torch.testing.assert_close(LDAMLoss(COUNTS, reduction="none")(z, y), want, rtol=1e-5, atol=1e-5)


def test_vs_formula(seed: int) -> None:
    z, y = _inputs()
    n = torch.tensor(COUNTS, dtype=torch.float64)
    adj = z / (n.max() / n) ** 0.3 + 1.0 * torch.log(n / n.sum())
    torch.testing.assert_close(
        VSLoss(COUNTS, reduction="none")(z, y),
        F.cross_entropy(adj, y, reduction="none"),
        rtol=1e-6,
        atol=1e-6,
    )


def test_drw_weights() -> None:
    assert torch.equal(drw_weights(COUNTS, epoch=10), torch.ones(4))
    w = drw_weights(COUNTS, epoch=160)
    raw = [(1 - 0.9999) / (1 - 0.9999**n) for n in COUNTS]
    want = torch.tensor([r / sum(raw) * 4 for r in raw], dtype=torch.float32)
    torch.testing.assert_close(w, want)
    assert math.isclose(float(w.sum()), 4.0, rel_tol=1e-6)


@pytest.mark.parametrize(
    "loss",
    [
        CELoss(COUNTS, reduction="none"),
        LALoss(COUNTS, reduction="none"),
        LDAMLoss(COUNTS, reduction="none"),
        VSLoss(COUNTS, reduction="none"),
        CELoss(COUNTS, weight=drw_weights(COUNTS, 200), reduction="none"),
    ],
)
def test_tables_reproduce_loss_and_gradients(loss, seed: int) -> None:
    z, y = _inputs(13)
    z.requires_grad_(True)
    coeff = torch.rand(4, dtype=torch.float64)
    scale, bias, margin, weight = loss.tables()
    losses, ga, gb = reference.focal_loss(z.detach(), y, coeff, scale, bias, margin, weight)
    want = loss(z, y)
    torch.testing.assert_close(losses, want.detach(), rtol=1e-5, atol=1e-5)
    c = coeff[y]
    want_a = torch.autograd.grad(((1 - c) * want).sum() / len(y), z, retain_graph=True)[0]
    want_b = torch.autograd.grad((c * want).sum() / len(y), z)[0]
    torch.testing.assert_close(ga, want_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gb, want_b, rtol=1e-5, atol=1e-6)


def test_loss_errors() -> None:
    with pytest.raises(ValueError, match="reduction must be one of"):
        CELoss(COUNTS, reduction="avg")
    with pytest.raises(ValueError, match=r"logits must be \[B, 4\]"):
        CELoss(COUNTS)(torch.randn(3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="weight must have one entry per class"):
        CELoss(COUNTS, weight=torch.ones(3))


def test_normed_linear_is_cosine(seed: int) -> None:
    head = NormedLinear(6, 4)
    x = torch.randn(5, 6)
    out = head(x)
    assert out.abs().max() <= 1 + 1e-6
    torch.testing.assert_close(out, F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).T)
