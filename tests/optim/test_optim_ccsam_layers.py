"""CC-SAM's head-only and last-layers forms against a plain transcription of docs/spec.md §5 in
float64 (several steps, SGD momentum + weight decay, BatchNorm in training mode), and the number of
passes through the perturbed layers per step."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focalsam_fast import CCSAM, kernels
from focalsam_fast.testing import FP64_ATOL, FP64_RTOL

FUSED = next(i for i in ("cpp", "foreach") if kernels.availability(i, "cpu")[0])
COUNTS = [40, 15, 6, 2, 1]
HYPER = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)


def _nets(form: str, seed: int) -> tuple[nn.Module, nn.Module]:
    """(frozen part, perturbed part) in float64; 'head': the classifier only; 'last': the last
    stage with BatchNorm, pooling and classifier; 'last-nobn': the same without BatchNorm.  A conv
    followed by BatchNorm has no bias (as in the ResNets): its gradient would be rounding noise,
    which the per-tensor radius scales up to a huge, ill-conditioned shift."""
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    if form == "head":
        trunk.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        last: nn.Module = nn.Linear(4, len(COUNTS))
    else:
        norm = [nn.BatchNorm2d(6)] if form == "last" else []
        last = nn.Sequential(
            nn.Conv2d(4, 6, 3, padding=1, bias=form != "last"),
            *norm,
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6, len(COUNTS)),
        )
    return trunk.double().train(), last.double().train()


def _batches(steps: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(12, 3, 5, 5, dtype=torch.float64, generator=gen),
            torch.randint(0, len(COUNTS), (12,), generator=gen),
        )
        for _ in range(steps)
    ]


def transcribed_step(
    trunk: nn.Module,
    last: nn.Module,
    x: Tensor,
    y: Tensor,
    bufs: dict[int, Tensor],
    *,
    nu: float,
    beta: float,
) -> None:
    """One CC-SAM step written out: per class, a perturbed *copy* of the last layers on the whole
    batch (its BatchNorm statistics are thrown away), the copy's gradient added to theta's."""
    h = trunk(x)
    losses = F.cross_entropy(last(h), y, reduction="none")
    theta = list(last.parameters())
    k = sum(p.numel() for p in theta)
    total = (1 - beta) * losses.mean()
    copies = []
    for c in torch.unique(y).tolist():
        rows, n_c = y == c, COUNTS[c]  # n_c: the class's training count
        grads = torch.autograd.grad(losses[rows].mean(), theta, retain_graph=True)
        moved = copy.deepcopy(last)
        with torch.no_grad():
            for q, p, g in zip(moved.parameters(), theta, grads):
                r = (
                    nu
                    * math.sqrt(p.norm())
                    / math.sqrt(g.norm())
                    / math.sqrt(2)
                    / max(n_c - 1, 1) ** 0.25
                    / k**0.25
                )
                q.copy_(p + r * math.sqrt(k) * g / g.norm())
        total = total + beta * F.cross_entropy(moved(h)[rows], y[rows], reduction="sum") / len(y)
        copies.append(moved)
    params = [*trunk.parameters(), *theta]
    for p in params:
        p.grad = None
    total.backward()
    with torch.no_grad():
        for moved in copies:
            for p, q in zip(theta, moved.parameters()):
                p.grad += q.grad
        for p in params:
            d = p.grad + HYPER["weight_decay"] * p
            bufs[id(p)] = d.clone() if id(p) not in bufs else HYPER["momentum"] * bufs[id(p)] + d
            p -= HYPER["lr"] * bufs[id(p)]


def _state(*modules: nn.Module) -> list[Tensor]:
    return [t.detach().clone() for m in modules for t in (*m.parameters(), *m.buffers())]


@pytest.mark.parametrize("impl", ["reference", FUSED])
@pytest.mark.parametrize("form", ["head", "last", "last-nobn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_ccsam_forms_match_the_transcription(form: str, impl: str, seed: int) -> None:
    """3 steps; ``head`` with a fused impl is the closed form, with ``reference`` the per-class
    weights; ``last`` feeds the whole batch (BatchNorm), ``last-nobn`` the class's rows only."""
    trunk, last = _nets(form, seed)
    mine_trunk, mine_last = copy.deepcopy(trunk), copy.deepcopy(last)
    nu, beta = 0.5, 0.4
    opt = CCSAM(
        [*mine_trunk.parameters(), *mine_last.parameters()],
        head=mine_last,
        class_counts=COUNTS,
        noise_ratio=nu,
        beta=beta,
        perturb="head" if form == "head" else "last",
        impl=impl,
        **HYPER,
    )
    bufs: dict[int, Tensor] = {}
    start = _state(trunk, last)
    for x, y in _batches(3, seed + 10):
        opt.step(lambda x=x: mine_trunk(x), targets=y)
        transcribed_step(trunk, last, x, y, bufs, nu=nu, beta=beta)
    for a, b in zip(_state(mine_trunk, mine_last), _state(trunk, last), strict=True):
        torch.testing.assert_close(a, b, rtol=FP64_RTOL, atol=FP64_ATOL)
    moved = max((a - b).abs().max().item() for a, b in zip(start, _state(trunk, last)))
    assert moved > 1e-3


def test_perturbation_matters_in_last_layers() -> None:
    """nu = 0.5 against nu = 0 (beta = 0.4): the perturbed term changes the update."""
    got = []
    for nu in (0.5, 0.0):
        trunk, last = _nets("last", 3)
        opt = CCSAM(
            [*trunk.parameters(), *last.parameters()],
            head=last,
            class_counts=COUNTS,
            noise_ratio=nu,
            beta=0.4,
            perturb="last",
            **HYPER,
        )
        for x, y in _batches(2, 4):
            opt.step(lambda x=x: trunk(x), targets=y)
        got.append(_state(trunk, last))
    assert max((a - b).abs().max().item() for a, b in zip(*got)) > 1e-4


CASES = [
    ("last", "reference"),
    ("last", FUSED),
    ("last-nobn", "reference"),
    ("head", "reference"),
    ("head", FUSED),
]


@pytest.mark.parametrize(("form", "impl"), CASES)
def test_one_pass_per_class_through_the_last_layers(form: str, impl: str) -> None:
    """Per step: the frozen part runs once; the perturbed layers run 1 + U forwards (clean, then
    one per class present) and their first weight gets U + 1 gradients (one per class for g_c,
    then the step's single backward).  The closed form (linear head, fused impl) needs no class
    gradient: 1 + U head forwards, 1 weight gradient."""
    trunk, last = _nets(form, 5)
    first = last if isinstance(last, nn.Linear) else last[0]
    calls = {"trunk": 0, "last": 0, "grads": 0}
    trunk.register_forward_hook(lambda *_: calls.__setitem__("trunk", calls["trunk"] + 1))
    first.register_forward_hook(lambda *_: calls.__setitem__("last", calls["last"] + 1))
    first.weight.register_hook(lambda g: calls.__setitem__("grads", calls["grads"] + 1))
    opt = CCSAM(
        [*trunk.parameters(), *last.parameters()],
        head=last,
        class_counts=COUNTS,
        noise_ratio=0.1,
        perturb="head" if form == "head" else "last",
        impl=impl,
        **HYPER,
    )
    closed_form = form == "head" and impl != "reference"
    for x, y in _batches(3, 6):
        classes = len(torch.unique(y))
        calls.update(trunk=0, last=0, grads=0)
        opt.step(lambda x=x: trunk(x), targets=y)
        assert calls == {"trunk": 1, "last": 1 + classes, "grads": 1 if closed_form else classes + 1}


def test_perturbed_passes_leave_running_statistics_to_the_clean_pass() -> None:
    """BatchNorm's running statistics after a step equal those of the clean forward alone."""
    trunk, last = _nets("last", 7)
    x, y = _batches(1, 8)[0]
    clean = copy.deepcopy(last)
    clean(trunk(x).detach())
    opt = CCSAM(
        [*trunk.parameters(), *last.parameters()],
        head=last,
        class_counts=COUNTS,
        noise_ratio=0.5,
        perturb="last",
        lr=0.0,
    )
    opt.step(lambda: trunk(x), targets=y)
    for a, b in zip(last.buffers(), clean.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=FP64_RTOL, atol=FP64_ATOL)


def test_unknown_perturb_mode_is_named() -> None:
    lin = nn.Linear(3, len(COUNTS))
    with pytest.raises(ValueError, match=r"perturb must be one of 'head', 'last', 'all', got 'layers'"):
        CCSAM(lin.parameters(), head=lin, class_counts=COUNTS, perturb="layers", lr=0.1)


@pytest.mark.parametrize("name", ["resnet32", "resnet50", "digits"])
def test_training_split_composes_to_the_model(name: str) -> None:
    """``ccsam_split(model, 'last')``: the layers applied to the features are the model itself, and
    the perturbed set is the last stage and the head only."""
    from focalsam_fast.models import DigitsCNN, ResNet50, resnet32
    from focalsam_fast.train.methods import ccsam_split

    torch.manual_seed(0)
    model, x, last_stage = {
        "resnet32": lambda: (m := resnet32(7), torch.randn(3, 3, 16, 16), m.layer3),
        "resnet50": lambda: (m := ResNet50(7), torch.randn(2, 3, 64, 64), m.body.layer4),
        "digits": lambda: (m := DigitsCNN(7), torch.randn(3, 1, 8, 8), m.body[4:]),
    }[name]()
    model = model.double().eval()
    split = ccsam_split(model, "last")
    torch.testing.assert_close(split.layers(split.features(x.double())), model(x.double()), rtol=0, atol=0)
    want = {id(p) for p in (*last_stage.parameters(), *model.fc.parameters())}
    assert {id(p) for p in split.layers.parameters()} == want
    head = ccsam_split(model, "head")
    assert head.layers is model.fc and head.perturbs == "head"


def test_training_split_names_the_models_it_has() -> None:
    from focalsam_fast.train.methods import ccsam_split

    with pytest.raises(ValueError, match=r"no last-layers split for Sequential .*ResNet-32, ResNet-50"):
        ccsam_split(nn.Sequential(nn.Linear(2, 2)), "last")
    with pytest.raises(ValueError, match=r"perturb must be one of head, last, got 'all'"):
        ccsam_split(nn.Sequential(nn.Linear(2, 2)), "all")


def test_training_optimizer_runs_the_last_layers_form() -> None:
    """``build_optimizer`` with ``ccsam_perturb='last'``: CC-SAM on the split's last layers, stepped with
    the split's features as the closure (what the training engine runs)."""
    from focalsam_fast.data import build_dataset
    from focalsam_fast.losses import CELoss
    from focalsam_fast.models import DigitsCNN
    from focalsam_fast.train.config import TrainConfig
    from focalsam_fast.train.methods import build_optimizer, ccsam_split

    data = build_dataset("digits_lt")
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=data.num_classes)
    criterion = CELoss(data.class_counts, reduction="none")
    opt = build_optimizer(TrainConfig(method="ccsam", ccsam_perturb="last"), model, data, criterion)
    split = ccsam_split(model, "last")
    assert opt.mode == "last"
    assert {id(p) for p in opt.head.parameters()} == {id(p) for p in split.layers.parameters()}
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % data.num_classes
    before = [p.detach().clone() for p in model.parameters()]
    out = opt.step(lambda: split.features(x), targets=y)
    assert torch.isfinite(out.loss) and out.logits.shape == (16, data.num_classes)
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
