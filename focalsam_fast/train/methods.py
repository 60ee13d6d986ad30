"""One optimizer per method, all with the closure-driven ``step(closure, targets=, grad_scaler=)``
interface of :mod:`focalsam_fast.optim` returning a :class:`StepOutput`.

Per-data-set choices (docs/spec.md §4-5, §8): ImbSAM's tail threshold is the data set's tail-group
threshold (200 for CIFAR-10-LT, 20 for CIFAR-100-LT / ImageNet-LT / iNat, 10 for the digits
default); CC-SAM's beta is 0.3 with 10 classes (CIFAR-10), 0.5 otherwise (CIFAR-100), noise
ratio 1e-6, and it perturbs the linear head (``'head'``, the official code) or the last layers
(``'last'``: the last stage, the pooling and the head, the protocol of the paper's timing table;
:func:`ccsam_split`); every SAM method uses the same rho (and rho schedule) as Focal-SAM.  Focal-SAM gets
the loss as ``criterion=`` (its fused loss path): its closure returns logits only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import LongTailedData
from ..losses.base import LogitAdjustedLoss
from ..models import DigitsCNN, ResNet50, ResNetCifar
from ..optim import CCSAM, SAM, FocalSAM, ImbSAM, StepOutput
from .config import TrainConfig

Closure = Callable[[], Any]


class ClosureSGD(torch.optim.SGD):
    """``torch.optim.SGD`` on the mean per-sample loss, stepped like the SAM methods (1F + 1B).

    ``step(closure, targets=..., grad_scaler=...)`` runs the closure (per-sample losses or
    ``(losses, logits)``), back-propagates the mean and updates; ``step()`` without a closure is
    the plain SGD update (what ``GradScaler.step`` calls).
    """

    def step(
        self,
        closure: Closure | None = None,
        targets: Tensor | None = None,  # type: ignore[override]
        grad_scaler: torch.amp.GradScaler | None = None,
    ) -> StepOutput | None:
        if closure is None:
            return super().step()
        self.zero_grad()
        with torch.enable_grad():
            out = closure()
        losses, logits = out if isinstance(out, (tuple, list)) else (out, None)
        loss = losses.mean()
        if grad_scaler is not None and grad_scaler.is_enabled():
            grad_scaler.scale(loss).backward()
            grad_scaler.step(self)
            grad_scaler.update()
        else:
            loss.backward()
            super().step()
        self.zero_grad()
        return StepOutput(loss.detach(), None if logits is None else logits.detach())


CCSAM_PERTURB = ("head", "last")


class SpatialMean(nn.Module):
    """Global average pooling as the models' ``features`` compute it: ``x.mean((2, 3))``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))


class CCSAMSplit(NamedTuple):
    """What CC-SAM's closure returns (``features(x)``), the module CC-SAM applies to it and
    perturbs (``layers``), and what those layers are (``perturbs``, for logs and tables)."""

    features: Callable[[Tensor], Tensor]
    layers: nn.Module
    perturbs: str


def _resnet_cifar_trunk(model: ResNetCifar) -> Callable[[Tensor], Tensor]:
    def trunk(x: Tensor) -> Tensor:
        return model.layer2(model.layer1(F.relu(model.bn1(model.conv1(x)))))

    return trunk


def _resnet50_trunk(model: ResNet50) -> Callable[[Tensor], Tensor]:
    b = model.body

    def trunk(x: Tensor) -> Tensor:
        return b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x)))))))

    return trunk


def ccsam_split(model: nn.Module, perturb: str) -> CCSAMSplit:
    """The CC-SAM closure's features and perturbed layers of ``model`` for ``perturb``:
    ``'head'``: the backbone features and the head; ``'last'``: the features before the last
    stage and ``last stage -> pooling -> head`` (ResNet-32 ``layer3``, ResNet-50 ``layer4``, the
    digits CNN's second conv block), the same function as ``model`` composed."""
    if perturb not in CCSAM_PERTURB:
        raise ValueError(f"CC-SAM perturb must be one of {', '.join(CCSAM_PERTURB)}, got {perturb!r}")
    if perturb == "head":
        return CCSAMSplit(model.features, model.head, "head")
    if isinstance(model, ResNetCifar):
        return CCSAMSplit(
            _resnet_cifar_trunk(model),
            nn.Sequential(model.layer3, SpatialMean(), model.fc),
            "layer3 + pool + head",
        )
    if isinstance(model, ResNet50):
        b = model.body
        return CCSAMSplit(
            _resnet50_trunk(model),
            nn.Sequential(b.layer4, b.avgpool, nn.Flatten(), model.fc),
            "layer4 + pool + head",
        )
    if isinstance(model, DigitsCNN):
        return CCSAMSplit(
            model.body[:4],
            nn.Sequential(model.body[4:], SpatialMean(), model.fc),
            "second conv block + pool + head",
        )
    raise ValueError(
        f"CC-SAM perturb='last' has no last-layers split for {type(model).__name__} (it has one "
        "for ResNet-32, ResNet-50 and the digits CNN); use perturb='head'"
    )


def tail_threshold(cfg: TrainConfig, data: LongTailedData) -> float:
    """ImbSAM's eta: ``cfg.tail_threshold`` or the data set's tail-group threshold."""
    return cfg.tail_threshold if cfg.tail_threshold is not None else float(data.thresholds.tail_below)


def ccsam_beta(cfg: TrainConfig, data: LongTailedData) -> float:
    """CC-SAM's beta: ``cfg.ccsam_beta`` or 0.3 for 10 classes (CIFAR-10), 0.5 otherwise."""
    if cfg.ccsam_beta is not None:
        return cfg.ccsam_beta
    return 0.3 if data.num_classes <= 10 else 0.5


def build_optimizer(
    cfg: TrainConfig, model: nn.Module, data: LongTailedData, criterion: LogitAdjustedLoss
) -> torch.optim.Optimizer:
    """The optimizer of ``cfg.method`` over the trainable parameters of ``model``
    (SGD momentum/coupled weight decay as the base optimizer of every SAM method).
    ``cfg.ccsam_perturb``: what CC-SAM perturbs (:func:`ccsam_split`; its closure must return
    ``ccsam_split(model, cfg.ccsam_perturb).features(x)``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model {cfg.model} has no trainable parameter")
    sgd = dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.method == "sgd":
        return ClosureSGD(params, **sgd)
    common: dict[str, Any] = dict(rho=cfg.rho, impl=cfg.impl, **sgd)
    counts = data.class_counts
    if cfg.method == "sam":
        return SAM(params, **common)
    if cfg.method == "imbsam":
        return ImbSAM(
            params,
            class_counts=counts,
            tail_threshold=tail_threshold(cfg, data),
            tail_weight=cfg.imbsam_tail_weight,
            **common,
        )
    if cfg.method == "ccsam":
        return CCSAM(
            params,
            head=ccsam_split(model, cfg.ccsam_perturb).layers,
            perturb=cfg.ccsam_perturb,
            class_counts=counts,
            noise_ratio=cfg.noise_ratio,
            beta=ccsam_beta(cfg, data),
            criterion=criterion,
            **common,
        )
    if cfg.method == "focalsam":
        # criterion=: the closure returns logits and the fused loss kernel gives the per-sample
        # losses and both weighted logit gradients in one pass (no autograd loss graph)
        return FocalSAM(
            params, class_counts=counts, gamma=cfg.gamma, lam=cfg.lam, criterion=criterion, **common
        )
    raise ValueError(f"unknown method {cfg.method!r}")


def method_details(cfg: TrainConfig, data: LongTailedData) -> dict[str, float | str]:
    """The method's own hyper-parameters as used (for the summary and config.json)."""
    if cfg.method == "focalsam":
        return {"rho": cfg.rho, "gamma": cfg.gamma, "lam": cfg.lam}
    if cfg.method == "imbsam":
        return {
            "rho": cfg.rho,
            "tail_threshold": tail_threshold(cfg, data),
            "tail_weight": cfg.imbsam_tail_weight,
        }
    if cfg.method == "ccsam":
        return {"beta": ccsam_beta(cfg, data), "noise_ratio": cfg.noise_ratio, "perturb": cfg.ccsam_perturb}
    if cfg.method == "sam":
        return {"rho": cfg.rho}
    return {}
