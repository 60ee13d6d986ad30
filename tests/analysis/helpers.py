"""Small models with dense Hessians for the analysis tests (fp64 throughout)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from focalsam_fast.analysis import HessianOperator
from focalsam_fast.models.digits_cnn import DigitsCNN


def ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-sample cross-entropy."""
    return nn.functional.cross_entropy(logits, targets, reduction="none")


def symmetric(eigenvalues: Tensor) -> Tensor:
    """A random symmetric matrix with the given spectrum (fp64)."""
    q = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), dtype=torch.float64))[0]
    return q @ torch.diag(eigenvalues.double()) @ q.T


def linear_softmax(n: int = 40, d: int = 6, c: int = 4) -> tuple[nn.Module, Tensor, Tensor]:
    """A linear softmax classifier with random weights and data (28 parameters by default)."""
    model = nn.Linear(d, c).double()
    return model, torch.randn(n, d, dtype=torch.float64), torch.randint(0, c, (n,))


def small_cnn(n: int = 16, classes: int = 5) -> tuple[nn.Module, Tensor, Tensor]:
    """DigitsCNN with 4 channels (393 parameters), random BatchNorm statistics, eval mode."""
    model = DigitsCNN(classes, channels=4).double()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    return model.eval(), torch.randn(n, 1, 8, 8, dtype=torch.float64), torch.randint(0, classes, (n,))


def dense_hessian(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The mean-loss Hessian by ``torch.autograd.functional.hessian`` over the flat parameters
    (independent of :class:`HessianOperator`'s products)."""
    model = model.eval()
    named = list(model.named_parameters())
    shapes = [p.shape for _, p in named]
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])

    def loss(t: Tensor) -> Tensor:
        parts = dict(
            zip(
                [n for n, _ in named],
                [c.view(s) for c, s in zip(t.split([s.numel() for s in shapes]), shapes)],
            )
        )
        return ce(functional_call(model, parts, (x,)), y).mean()

    return torch.autograd.functional.hessian(loss, theta, vectorize=True)


def operator(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 7, **kw: object) -> HessianOperator:
    """fp64 operator over chunks of ``chunk`` samples."""
    return HessianOperator(model, ce, x, y, chunk_size=chunk, dtype=torch.float64, **kw)
