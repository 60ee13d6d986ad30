"""Schedules (docs/spec.md §6, §8), presets (docs/spec.md §8 table) and per-method optimizer construction."""

from __future__ import annotations

import math

import pytest
import torch

from focalsam_fast.data import build_dataset
from focalsam_fast.losses import CELoss
from focalsam_fast.optim import CCSAM, SAM, FocalSAM, ImbSAM, TwoStepRho
from focalsam_fast.testing import SmallCNN
from focalsam_fast.train.config import PRESETS, TrainConfig, resolve_config
from focalsam_fast.train.methods import ClosureSGD, build_optimizer
from focalsam_fast.train.schedules import CosineLR, apply_drw, build_rho_scheduler, drw_switch_epoch


def _sgd(lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_train_cosine_lr_per_epoch_no_warmup() -> None:
    opt = _sgd(0.1)
    sched = CosineLR(opt, 200)
    seen = []
    for _ in range(200):
        seen.append(opt.param_groups[0]["lr"])
        sched.step()
    assert seen[0] == 0.1
    for e in (1, 57, 100, 199):
        assert seen[e] == pytest.approx(0.1 * (1 + math.cos(math.pi * e / 200)) / 2, rel=1e-15)
    resumed = CosineLR(_sgd(0.1), 200)
    resumed.load_state_dict({"last_epoch": 57, "base_lrs": [0.1], "epochs": 200})
    assert resumed.get_last_lr() == [seen[57]]


def test_train_two_step_rho_and_drw_switch() -> None:
    cfg = TrainConfig(rho_steps=[0.1, 0.2], epochs=200)
    opt = SAM([torch.nn.Parameter(torch.zeros(2))], lr=0.1, rho=0.05)
    sched = build_rho_scheduler(opt, cfg)
    assert isinstance(sched, TwoStepRho)
    rhos = []
    for _ in range(200):
        rhos.append(opt.param_groups[0]["rho"])
        sched.step()
    assert rhos[158] == 0.1 and rhos[159] == 0.2  # rho_steps[0] while e + 1 < 0.8 E
    assert build_rho_scheduler(_sgd(), cfg) is None
    assert drw_switch_epoch(200) == 160
    loss = CELoss([100, 10, 1], reduction="none")
    apply_drw(loss, [100, 10, 1], 159, 200)
    assert torch.equal(loss.weight, torch.ones(3))
    apply_drw(loss, [100, 10, 1], 160, 200)
    assert loss.weight[2] > loss.weight[1] > loss.weight[0] and float(loss.weight.sum()) == pytest.approx(3)


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("cifar10_resnet32", (3.0, 0.5, 0.2, 200, 64, 0.1, 2e-4)),
        ("cifar100_resnet32", (3.2, 0.8, 0.3, 200, 64, 0.1, 1e-3)),
        ("imagenet_lt_resnet50", (0.8, 0.8, 0.1, 200, 256, 0.1, 5e-4)),
        ("inat2018_resnet50", (2.0, 1.1, 0.2, 200, 512, 0.2, 2e-4)),
        ("cifar10_clip_lift", (1.5, 0.7, 0.05, 20, 128, 0.01, 5e-4)),
        ("cifar100_clip_lift", (5.5, 0.8, 0.05, 20, 128, 0.01, 5e-4)),
        ("imagenet_lt_clip_lift", (0.5, 0.8, 0.05, 20, 128, 0.01, 5e-4)),
        ("inat2018_clip_lift", (0.2, 1.0, 0.02, 20, 128, 0.01, 5e-4)),
        ("inat2018_clip_fft", (0.2, 1.0, 0.02, 20, 128, 0.001, 5e-4)),
    ],
)
def test_train_presets_match_spec_table(name: str, row: tuple) -> None:
    cfg = resolve_config(name)
    assert (cfg.gamma, cfg.lam, cfg.rho, cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == row
    assert (cfg.loss, cfg.momentum, cfg.seed, cfg.method) == ("la", 0.9, 0, "focalsam")
    if name == "imagenet_lt_resnet50":
        assert cfg.rho_steps == [0.1, 0.2]
    assert PRESETS[name].description


def test_train_unknown_preset_lists_names() -> None:
    with pytest.raises(ValueError, match="valid: digits, cifar10_resnet32"):
        resolve_config("nope")


def test_train_build_optimizer_per_method() -> None:
    data = build_dataset("digits_lt")
    crit = CELoss(data.class_counts, reduction="none")
    model = SmallCNN(num_classes=10, in_channels=1)
    model.head = model.fc
    expected = {"sgd": ClosureSGD, "sam": SAM, "imbsam": ImbSAM, "ccsam": CCSAM, "focalsam": FocalSAM}
    for method, cls in expected.items():
        cfg = TrainConfig(method=method, rho=0.07, gamma=1.5, lam=0.6)
        opt = build_optimizer(cfg, model, data, crit)
        assert type(opt) is cls
        group = opt.param_groups[0]
        assert (group["lr"], group["momentum"], group["weight_decay"]) == (cfg.lr, 0.9, cfg.weight_decay)
        if method in ("sam", "imbsam", "focalsam"):
            assert group["rho"] == 0.07
    imb = build_optimizer(TrainConfig(method="imbsam"), model, data, crit)
    assert imb.tail_threshold == data.thresholds.tail_below
    cc = build_optimizer(TrainConfig(method="ccsam"), model, data, crit)
    assert (cc.beta, cc.noise_ratio) == (0.3, 1e-6)
    fs = build_optimizer(TrainConfig(method="focalsam", gamma=1.5, lam=0.6), model, data, crit)
    assert (fs.gamma, fs.lam) == (1.5, 0.6)


def test_train_closure_sgd_matches_torch_sgd() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    a, b = SmallCNN(3, in_channels=1), SmallCNN(3, in_channels=1)
    b.load_state_dict(a.state_dict())
    opt_a = ClosureSGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    crit = torch.nn.CrossEntropyLoss(reduction="none")
    for _ in range(3):
        out = opt_a.step(lambda: (crit(a(x), y), None), targets=y)
        opt_b.zero_grad()
        loss = crit(b(x), y).mean()
        loss.backward()
        opt_b.step()
        assert torch.equal(out.loss, loss.detach())
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
