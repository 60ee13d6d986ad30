"""Head / medium / tail groups from training counts with the official thresholds per (data set,
imbalance ratio) and their provenance, and per-class / per-group accuracy (docs/spec.md §7,
docs/fidelity.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

GROUP_NAMES = ("head", "medium", "tail")


@dataclass(frozen=True)
class GroupThresholds:
    """A class is tail when ``n < tail_below``, head when ``n > head_above``, medium otherwise.

    ``official`` / ``source`` say where the values come from (not part of equality).
    """

    tail_below: int
    head_above: int
    official: bool = field(default=False, compare=False)
    source: str = field(default="given explicitly", compare=False)

    def describe(self) -> str:
        """E.g. ``head n > 100, medium 20..100, tail n < 20 (official: ...)``."""
        kind = "official" if self.official else "assumed"
        return (
            f"head n > {self.head_above}, medium {self.tail_below}..{self.head_above}, "
            f"tail n < {self.tail_below} ({kind}: {self.source})"
        )

    def to_dict(self) -> dict[str, int | bool | str]:
        """A JSON-serialisable record of the values and their provenance."""
        return {
            "tail_below": self.tail_below,
            "head_above": self.head_above,
            "official": self.official,
            "source": self.source,
        }


def _official(tail: int, head: int, source: str) -> GroupThresholds:
    return GroupThresholds(tail, head, official=True, source=source)


_PAPER = "the paper's Appendix (evaluation protocol) and the official CIFAR scripts"
_CLIP_SCRIPT = "the official CIFAR CLIP script (its ResNet script has IR 10 and 100 only)"
_BOTH_SCRIPTS = "the official CIFAR ResNet and CLIP scripts"

GROUP_PRESETS: dict[str, GroupThresholds] = {
    # CIFAR-10-LT IR 100: tail n < 200, medium 200..1000, head > 1000.
    "cifar10": _official(200, 1000, f"CIFAR-10-LT IR 100, {_PAPER}"),
    # CIFAR-100-LT IR 100, ImageNet-LT, iNaturalist 2018: tail n < 20, medium 20..100, head > 100.
    "cifar100": _official(20, 100, f"CIFAR-100-LT IR 100, {_PAPER}"),
    "imagenet_lt": _official(20, 100, "ImageNet-LT, the paper's Appendix (evaluation protocol)"),
    "inat2018": _official(20, 100, "iNaturalist 2018, the paper's Appendix (evaluation protocol)"),
    # Embedded digits default (counts 124 ... 1): tail n < 10, medium 10..50, head > 50.
    "digits": GroupThresholds(10, 50, official=False, source="this project's choice for the digits demo"),
}

# (data set, imbalance ratio) -> thresholds of the official CIFAR code; other ratios of a CIFAR
# data set fall back to its IR-100 values, marked as assumed.
RATIO_THRESHOLDS: dict[tuple[str, float], GroupThresholds] = {
    ("cifar10_lt", 100.0): GROUP_PRESETS["cifar10"],
    ("cifar10_lt", 10.0): _official(835, 2319, f"CIFAR-10-LT IR 10, {_BOTH_SCRIPTS}"),
    ("cifar10_lt", 50.0): _official(200, 1500, f"CIFAR-10-LT IR 50, {_CLIP_SCRIPT}"),
    ("cifar10_lt", 200.0): _official(100, 800, f"CIFAR-10-LT IR 200, {_CLIP_SCRIPT}"),
    ("cifar100_lt", 100.0): GROUP_PRESETS["cifar100"],
    ("cifar100_lt", 10.0): _official(99, 265, f"CIFAR-100-LT IR 10, {_BOTH_SCRIPTS}"),
    ("cifar100_lt", 50.0): _official(20, 100, f"CIFAR-100-LT IR 50, {_CLIP_SCRIPT}"),
    ("cifar100_lt", 200.0): _official(10, 60, f"CIFAR-100-LT IR 200, {_CLIP_SCRIPT}"),
}
# Data sets whose groups do not depend on a ratio (fixed splits, or the demo), by group preset.
FIXED_SPLIT_PRESETS = {"imagenet_lt": "imagenet_lt", "inat2018": "inat2018", "digits_lt": "digits"}


def group_thresholds(preset: str) -> GroupThresholds:
    """The named threshold preset; an unknown name raises ``ValueError`` listing the valid ones."""
    try:
        return GROUP_PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown group preset {preset!r}; valid: {', '.join(GROUP_PRESETS)}") from None


def thresholds_for(dataset: str, imbalance_ratio: float | None = None) -> GroupThresholds:
    """The head/medium/tail thresholds of ``dataset`` at ``imbalance_ratio`` (CIFAR-LT; ignored by
    the fixed splits): the official values where the official code has them, else the data set's
    IR-100 values marked ``official=False`` with the reason."""
    if dataset in FIXED_SPLIT_PRESETS:
        return GROUP_PRESETS[FIXED_SPLIT_PRESETS[dataset]]
    known = sorted(r for d, r in RATIO_THRESHOLDS if d == dataset)
    if not known:
        valid = sorted({d for d, _ in RATIO_THRESHOLDS} | set(FIXED_SPLIT_PRESETS))
        raise ValueError(f"no group thresholds for data set {dataset!r}; valid: {', '.join(valid)}")
    ratio = 100.0 if imbalance_ratio is None else float(imbalance_ratio)
    if (dataset, ratio) in RATIO_THRESHOLDS:
        return RATIO_THRESHOLDS[(dataset, ratio)]
    base = RATIO_THRESHOLDS[(dataset, 100.0)]
    return GroupThresholds(
        base.tail_below,
        base.head_above,
        official=False,
        source=(
            f"{dataset} IR {ratio:g} has no official thresholds (the official code has IR "
            f"{', '.join(f'{r:g}' for r in known)}); the IR-100 values are used"
        ),
    )


def split_groups(class_counts: Sequence[int], thresholds: GroupThresholds | str) -> dict[str, list[int]]:
    """Class indices of each group (``head``, ``medium``, ``tail``; a group may be empty)."""
    th = group_thresholds(thresholds) if isinstance(thresholds, str) else thresholds
    groups: dict[str, list[int]] = {name: [] for name in GROUP_NAMES}
    for k, n in enumerate(class_counts):
        if n < th.tail_below:
            groups["tail"].append(k)
        elif n > th.head_above:
            groups["head"].append(k)
        else:
            groups["medium"].append(k)
    return groups


def _as_numpy(x: torch.Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def per_class_accuracy(
    predictions: torch.Tensor | np.ndarray | Sequence[int],
    targets: torch.Tensor | np.ndarray | Sequence[int],
    num_classes: int,
) -> np.ndarray:
    """Top-1 accuracy of each class ``[num_classes]`` (NaN for a class absent from ``targets``)."""
    pred = _as_numpy(predictions).astype(np.int64).ravel()
    true = _as_numpy(targets).astype(np.int64).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"predictions {pred.shape} and targets {true.shape} differ in length")
    total = np.bincount(true, minlength=num_classes).astype(np.float64)
    correct = np.bincount(true[pred == true], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / total


def group_accuracy(per_class_acc: np.ndarray, groups: dict[str, list[int]]) -> dict[str, float]:
    """Mean of the per-class accuracies in each group (NaN for an empty group), plus ``all``."""
    acc = np.asarray(per_class_acc, dtype=np.float64)
    out = {"all": float(np.nanmean(acc))}
    for name, classes in groups.items():
        out[name] = float(np.nanmean(acc[classes])) if classes else float("nan")
    return out
