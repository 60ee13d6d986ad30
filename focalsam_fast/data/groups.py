"""Head / medium / tail groups from training counts, and per-class / per-group accuracy (docs/spec.md §7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

GROUP_NAMES = ("head", "medium", "tail")


@dataclass(frozen=True)
class GroupThresholds:
    """A class is tail when ``n < tail_below``, head when ``n > head_above``, medium otherwise."""

    tail_below: int
    head_above: int


GROUP_PRESETS: dict[str, GroupThresholds] = {
    # CIFAR-10-LT: tail n < 200, medium 200..1000, head > 1000.
    "cifar10": GroupThresholds(tail_below=200, head_above=1000),
    # CIFAR-100-LT, ImageNet-LT, iNaturalist 2018: tail n < 20, medium 20..100, head > 100.
    "cifar100": GroupThresholds(tail_below=20, head_above=100),
    "imagenet_lt": GroupThresholds(tail_below=20, head_above=100),
    "inat2018": GroupThresholds(tail_below=20, head_above=100),
    # Embedded digits default (counts 124 ... 1): tail n < 10, medium 10..50, head > 50.
    "digits": GroupThresholds(tail_below=10, head_above=50),
}


def group_thresholds(preset: str) -> GroupThresholds:
    """The named threshold preset; an unknown name raises ``ValueError`` listing the valid ones."""
    try:
        return GROUP_PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown group preset {preset!r}; valid: {', '.join(GROUP_PRESETS)}") from None


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
