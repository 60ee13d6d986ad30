"""Settings that rest on assumptions rather than on the released scripts: one table, applied to a
resolved configuration (``focalsam presets`` marks them; docs/fidelity.md lists them).

Torch-free, like :mod:`~focalsam_fast.train.config`, so that ``focalsam presets`` answers at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import TrainConfig

BASELINES = ("sam", "imbsam", "ccsam")
LARGE_SCALE = ("imagenet_lt", "inat2018")


@dataclass(frozen=True)
class Assumption:
    """Config ``fields`` whose values rest on an assumption ``when`` it ``applies`` to a config."""

    key: str
    fields: tuple[str, ...]
    when: str
    reason: str
    applies: Callable[[TrainConfig], bool]


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(
        "fft",
        ("gamma", "lam", "rho", "prec"),
        "--model clip_vit_b16_fft",
        "the released CLIP scripts are LIFT runs; full fine-tuning takes the paper's lr 0.001 and the "
        "LIFT run's gamma, lambda, rho and precision of the same data set",
        lambda c: c.model == "clip_vit_b16_fft",
    ),
    Assumption(
        "baseline-rho",
        ("rho", "rho_steps"),
        "--method sam, imbsam or ccsam",
        "the released settings are Focal-SAM's; the baselines take the same rho and rho schedule per "
        "data set (their own values are not released)",
        lambda c: c.method in BASELINES,
    ),
    Assumption(
        "imbsam-tail-weight",
        ("imbsam_tail_weight",),
        "--method imbsam",
        "default 1 is the paper's Eq. (1); the official ImbSAM code uses 2 (--imbsam-tail-weight 2)",
        lambda c: c.method == "imbsam",
    ),
    Assumption(
        "imbsam-threshold",
        ("tail_threshold",),
        "--method imbsam",
        "ImbSAM's tail set is the run's tail group (n < TAIL of the group thresholds: 200 on CIFAR-10-LT "
        "IR 100, 20 on CIFAR-100-LT IR 100, ImageNet-LT and iNaturalist); the official default 20 would "
        "leave CIFAR-10-LT without a tail class",
        lambda c: c.method == "imbsam" and c.tail_threshold is None,
    ),
    Assumption(
        "other-loss",
        ("gamma", "lam", "rho"),
        "--loss ce, ldam or vs with Focal-SAM",
        "the released Focal-SAM settings are for the LA loss; the same gamma, lambda and rho are used "
        "with CE, LDAM and VS (the paper does not list theirs)",
        lambda c: c.method == "focalsam" and c.loss != "la",
    ),
    Assumption(
        "vs-large-scale",
        ("vs_gamma", "vs_tau"),
        "--loss vs on ImageNet-LT or iNaturalist",
        "the released VS values (gamma 0.05, tau 0.75) are the CIFAR scripts'",
        lambda c: c.loss == "vs" and c.dataset in LARGE_SCALE,
    ),
    Assumption(
        "ccsam-beta",
        ("ccsam_beta",),
        "--method ccsam on ImageNet-LT or iNaturalist",
        "CC-SAM's released beta is for CIFAR-10 (0.3) and CIFAR-100 (0.5); 0.5 is used for more classes",
        lambda c: c.method == "ccsam" and c.ccsam_beta is None and c.dataset in LARGE_SCALE,
    ),
    Assumption(
        "cifar-ratio",
        ("gamma", "lam", "rho"),
        "a CIFAR-LT imbalance ratio other than 100",
        "the released CIFAR hyper-parameters are for IR 100",
        lambda c: c.dataset in ("cifar10_lt", "cifar100_lt") and c.imbalance_ratio != 100,
    ),
)


def assumptions_of(cfg: TrainConfig) -> list[Assumption]:
    """The assumptions that apply to ``cfg``, in table order."""
    return [a for a in ASSUMPTIONS if a.applies(cfg)]


def assumed_fields(cfg: TrainConfig) -> dict[str, list[str]]:
    """``{field: [assumption keys]}`` of every field of ``cfg`` that rests on an assumption."""
    out: dict[str, list[str]] = {}
    for a in assumptions_of(cfg):
        for name in a.fields:
            out.setdefault(name, []).append(a.key)
    return out
