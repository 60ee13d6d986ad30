"""Every bad input raises a clear error before any parameter is touched (issue: core, point 4)."""

from __future__ import annotations

import copy
import re

import pytest
import torch
import torch.nn.functional as F
from method_cases import closure, make, model
from torch import nn

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM, LALoss, LDAMLoss, VSLoss

COUNTS = [30, 10, 2]  # method_cases' tables have 3 classes too


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
        (
            {"base_optimizer": torch.optim.SGD([nn.Parameter(torch.randn(1))], lr=0.1)},
            TypeError,
            "base_optimizer must be an optimizer class",
        ),
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
        opt.step(
            lambda: F.cross_entropy(lin(x), y.clamp(max=1), reduction="none"),
            targets=torch.tensor([0, -1, 1, 0, 1]),
        )
    with pytest.raises(ValueError, match=r"targets must have shape \(5,\)"):
        opt.step(
            lambda: F.cross_entropy(lin(x), y.clamp(max=1), reduction="none"), targets=torch.tensor([0, 1, 1])
        )
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
    opt = FocalSAM(lin.parameters(), class_counts=COUNTS, gamma=1.0, lam=0.5, rho=0.1, lr=0.1, momentum=0.9)
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


LABEL_CASES = [
    (torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.uint8), TypeError, r"torch\.long.*uint8.*masks"),
    (torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.bool), TypeError, r"torch\.long.*bool.*masks"),
    (torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.int32), TypeError, r"torch\.long.*int32.*targets\.long"),
    (torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.int16), TypeError, r"torch\.long.*int16"),
    (torch.tensor([0.0, 1, 2, 0, 1, 2]), TypeError, r"torch\.long.*float32"),
    (torch.tensor([[0, 1, 2], [0, 1, 2]]), ValueError, r"1-D.*\(2, 3\)"),
    (torch.tensor([0, 1, 2, 0]), ValueError, r"shape \(6,\) to match the 6 .*\(4,\)"),
    (torch.tensor([0, 1, 2, 0, 1, 2, 0]), ValueError, r"shape \(6,\)"),
    (torch.tensor([0, 1, 3, 0, 1, 2]), ValueError, r"label 3 is out of range: valid labels are 0\.\.2"),
    ([0, 1, 2, 0, 1, 2], TypeError, "targets must be a tensor"),
]


@pytest.mark.parametrize("method", ["imbsam", "focal", "ccsam"])
@pytest.mark.parametrize(("labels", "err", "match"), LABEL_CASES)
def test_bad_labels_fail_before_any_pass(method: str, labels, err: type, match: str) -> None:
    """Only int64 class indices are labels (uint8/bool would index as masks); a wrong shape or
    count fails before any backward, with the weights untouched."""
    net = model()
    opt = make(method, net)
    x = torch.randn(6, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    w = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(err, match=match):
        opt.step(closure(method, net, x, y), targets=labels)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), w))
    assert all(p.grad is None for p in net.parameters()) and not any(opt.state.values())


def test_labels_checked_without_check_inputs_where_free() -> None:
    """dtype and shape need no data read, so they are checked even with check_inputs=False."""
    net = model()
    opt = make("focal", net, check_inputs=False)
    x, y = torch.randn(6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(TypeError, match="uint8"):
        opt.step(closure("focal", net, x, y), targets=y.to(torch.uint8))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        opt.step(closure("focal", net, x, y), targets=y[:4])


@pytest.mark.parametrize("method", ["imbsam", "focal", "ccsam"])
def test_class_table_must_match_the_logits(method: str) -> None:
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5)).double()  # 5 classes, counts 3
    opt = make(method, net)
    x, y = torch.randn(6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    w = [p.detach().clone() for p in net.parameters()]
    if method == "ccsam":
        clos = lambda: net[:-1](x)  # noqa: E731
    else:
        clos = lambda: (F.cross_entropy(net(x), y, reduction="none"), net(x))  # noqa: E731
    with pytest.raises(ValueError, match=r"logits have 5 classes.*class_counts has 3"):
        opt.step(clos, targets=y)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), w))


def test_fused_loss_class_table_must_match() -> None:
    net = nn.Linear(6, 5).double()
    opt = FocalSAM(net.parameters(), class_counts=COUNTS, rho=0.1, lr=0.1, criterion=LALoss(COUNTS))
    x, y = torch.randn(6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"logits have 5 classes.*class_counts has 3"):
        opt.step(lambda: net(x), targets=y)


NUMERIC_CASES = [
    ({"lr": float("nan")}, "lr must be a finite number >= 0, got nan"),
    ({"lr": float("inf")}, "lr must be a finite number >= 0, got inf"),
    ({"lr": -0.1}, "lr must be a finite number >= 0, got -0.1"),
    ({"lr": torch.tensor(float("nan"))}, "lr must be a finite number >= 0, got nan"),
    ({"momentum": -0.9}, "momentum must be"),
    ({"weight_decay": float("nan")}, "weight_decay must be"),
    ({"dampening": float("inf")}, "dampening must be"),
    ({"rho": float("nan")}, "rho must be"),
    ({"rho": float("inf")}, "rho must be"),
    ({"gamma": float("inf")}, "gamma must be"),
    ({"class_counts": ["a", "b", "c"]}, "class_counts must be numbers"),
    ({"class_counts": [40, float("nan"), 3]}, "class_counts must be finite"),
]


@pytest.mark.parametrize(("kwargs", "match"), NUMERIC_CASES)
def test_numeric_arguments(kwargs: dict, match: str) -> None:
    args = {"class_counts": COUNTS, "gamma": 1.0, "lam": 0.5, "rho": 0.1, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=re.escape(match)):
        FocalSAM(model().parameters(), **args)


@pytest.mark.parametrize(("key", "value"), [("lr", float("nan")), ("rho", -1.0), ("momentum", float("inf"))])
def test_load_state_dict_validates(key: str, value: float) -> None:
    net = model()
    opt = make("focal", net)
    sd = opt.state_dict()
    sd["param_groups"][0][key] = value
    before = copy.deepcopy(opt.param_groups[0])
    with pytest.raises(ValueError, match=f"{key} of param group 0 in the state_dict"):
        opt.load_state_dict(sd)
    assert opt.param_groups[0].keys() == before.keys()
    assert all(opt.param_groups[0][k] == before[k] for k in before if k != "params")


@pytest.mark.parametrize(
    ("loss", "kwargs", "match"),
    [
        (LALoss, {"tau": float("nan")}, "LA tau must be a finite number"),
        (VSLoss, {"gamma": -0.1}, "VS gamma must be a finite number >= 0"),
        (VSLoss, {"tau": float("inf")}, "VS tau must be a finite number"),
        (LDAMLoss, {"s": 0.0}, "LDAM s must be > 0"),
        (LDAMLoss, {"s": float("nan")}, "LDAM s must be a finite number"),
        (LDAMLoss, {"max_m": -0.5}, "LDAM max_m must be a finite number >= 0"),
        (LDAMLoss, {"weight": torch.tensor([1.0, float("nan"), 1.0])}, "weight must be finite"),
    ],
)
def test_loss_arguments(loss, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=re.escape(match)):
        loss(COUNTS, **kwargs)
