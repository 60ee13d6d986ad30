"""Every bad input raises a clear error before any parameter is touched (issue: core, point 4)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM

COUNTS = [30, 10, 2]


def _lin() -> nn.Linear:
    return nn.Linear(4, 3)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"rho": -0.1}, ValueError, "rho must be a finite number >= 0, got -0.1"),
        ({"gamma": -1.0}, ValueError, "gamma must be a finite number >= 0, got -1.0"),
        ({"lam": float("nan")}, ValueError, "lam"),
        ({"class_counts": [[1, 2], [3, 4]]}, ValueError, "class_counts must be 1-D"),
        ({"class_counts": [5, 0, 3]}, ValueError, r"must all be > 0.*\[0\].*\[1\]"),
        ({"class_counts": [5, -2, 3]}, ValueError, "must all be > 0"),
        ({"base_optimizer": torch.optim.SGD([nn.Parameter(torch.randn(1))], lr=0.1)}, TypeError,
         "base_optimizer must be an optimizer class"),
        ({"base_optimizer": dict}, TypeError, "base_optimizer must be an optimizer class"),
        ({"impl": "cuda-fast"}, ValueError, "unknown impl 'cuda-fast'"),
    ],
)
def test_constructor_errors(kwargs: dict, err: type, match: str) -> None:
    lin = _lin()
    before = [p.detach().clone() for p in lin.parameters()]
    args = {"class_counts": COUNTS, "gamma": 1.0, "lam": 0.5, "rho": 0.1, "lr": 0.1, **kwargs}
    base = args.pop("base_optimizer", torch.optim.SGD)
    with pytest.raises(err, match=match):
        FocalSAM(lin.parameters(), base, **args)
    assert all(torch.equal(p, q) for p, q in zip(lin.parameters(), before))


def test_param_group_rho_negative() -> None:
    with pytest.raises(ValueError, match="rho of param group 0"):
        SAM([{"params": _lin().parameters(), "rho": -1.0}], lr=0.1)


@pytest.mark.parametrize("cls", [FocalSAM, ImbSAM])
def test_wrong_length_counts_and_bad_labels(cls) -> None:
    lin = _lin()
    extra = {"tail_threshold": 5} if cls is ImbSAM else {}
    opt = cls(lin.parameters(), class_counts=[30, 10], rho=0.1, lr=0.1, **extra)
    x = torch.randn(5, 4)
    w0 = [p.detach().clone() for p in lin.parameters()]
    y = torch.tensor([0, 1, 2, 0, 1])  # label 2 but only 2 classes counted
    with pytest.raises(ValueError, match=r"label 2 is out of range: valid labels are 0\.\.1"):
        opt.step(lambda: F.cross_entropy(lin(x), y, reduction="none"), targets=y)
    with pytest.raises(ValueError, match="label -1 is out of range"):
        opt.step(lambda: F.cross_entropy(lin(x), y.clamp(max=1), reduction="none"),
                 targets=torch.tensor([0, -1, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"targets must have shape \(5,\)"):
        opt.step(lambda: F.cross_entropy(lin(x), y.clamp(max=1), reduction="none"),
                 targets=torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match=r"targets="):
        opt.step(lambda: F.cross_entropy(lin(x), y, reduction="none"))
    assert all(torch.equal(p, q) for p, q in zip(lin.parameters(), w0))


def test_scalar_closure_says_reduction_none() -> None:
    lin = _lin()
    opt = FocalSAM(lin.parameters(), class_counts=COUNTS, rho=0.1, lr=0.1)
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 0])
    w0 = [p.detach().clone() for p in lin.parameters()]
    with pytest.raises(ValueError, match="reduction='none'"):
        opt.step(lambda: F.cross_entropy(lin(x), y), targets=y)
    assert all(torch.equal(p, q) for p, q in zip(lin.parameters(), w0))


@pytest.mark.parametrize("bad_pass", [1, 2])
def test_nonfinite_loss_raises_and_keeps_weights(bad_pass: int) -> None:
    lin = _lin()
    opt = FocalSAM(lin.parameters(), class_counts=COUNTS, gamma=1.0, lam=0.5, rho=0.1, lr=0.1,
                   momentum=0.9)
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 0])
    w0 = [p.detach().clone() for p in lin.parameters()]
    calls = {"n": 0}

    def closure():
        calls["n"] += 1
        losses = F.cross_entropy(lin(x), y, reduction="none")
        return losses * float("nan") if calls["n"] == bad_pass else losses

    with pytest.raises(FloatingPointError, match=r"non-finite loss at w.*exactly as before"):
        opt.step(closure, targets=y)
    assert all(torch.equal(p, q) for p, q in zip(lin.parameters(), w0))
    assert all(p.grad is None for p in lin.parameters())
    assert not any("saved" in s or "stash" in s for s in opt.state.values())


def test_closure_required_and_ccsam_features() -> None:
    lin = _lin()
    with pytest.raises(TypeError, match="closure"):
        SAM(lin.parameters(), lr=0.1).step()
    opt = CCSAM(lin.parameters(), head=lin, class_counts=COUNTS, lr=0.1)
    with pytest.raises(TypeError, match="backbone features"):
        opt.step(lambda: torch.randn(4), targets=torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="beta must be in"):
        CCSAM(lin.parameters(), head=lin, class_counts=COUNTS, beta=1.5, lr=0.1)
    with pytest.raises(TypeError, match="head must be"):
        CCSAM(lin.parameters(), head=lin.weight, class_counts=COUNTS, lr=0.1)
