"""Head/medium/tail groups (docs/spec.md §7), per-class and group accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from focalsam_fast.data import (
    GroupThresholds,
    group_accuracy,
    group_thresholds,
    imbalance_counts,
    per_class_accuracy,
    split_groups,
)


def test_cifar10_ir100_groups() -> None:
    groups = split_groups(imbalance_counts(5000, 10, 100), "cifar10")
    assert groups == {"head": [0, 1, 2, 3], "medium": [4, 5, 6], "tail": [7, 8, 9]}


def test_cifar100_ir100_groups() -> None:
    groups = split_groups(imbalance_counts(500, 100, 100), "cifar100")
    assert [len(groups[g]) for g in ("head", "medium", "tail")] == [35, 35, 30]
    assert groups["head"] == list(range(35)) and groups["tail"] == list(range(70, 100))


def test_threshold_boundaries() -> None:
    th = GroupThresholds(tail_below=20, head_above=100)
    assert split_groups([101, 100, 20, 19], th) == {"head": [0], "medium": [1, 2], "tail": [3]}
    for name in ("cifar100", "imagenet_lt", "inat2018"):
        assert group_thresholds(name) == th
    with pytest.raises(ValueError, match="valid: cifar10, cifar100"):
        group_thresholds("cifar1000")


def test_per_class_and_group_accuracy(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 6, (500,), generator=gen)
    preds = torch.where(
        torch.rand(500, generator=gen) < 0.6, targets, torch.randint(0, 6, (500,), generator=gen)
    )
    pc = per_class_accuracy(preds, targets, 7)
    for k in range(6):
        mask = targets == k
        assert pc[k] == pytest.approx((preds[mask] == k).float().mean().item())
    assert np.isnan(pc[6])  # class absent from the test labels
    groups = {"head": [0, 1], "medium": [2, 3, 4], "tail": [5], "empty": []}
    acc = group_accuracy(pc, groups)
    assert acc["head"] == pytest.approx(pc[:2].mean())
    assert acc["medium"] == pytest.approx(pc[2:5].mean())
    assert acc["tail"] == pytest.approx(pc[5])
    assert acc["all"] == pytest.approx(pc[:6].mean())
    assert np.isnan(acc["empty"])
    with pytest.raises(ValueError, match="differ in length"):
        per_class_accuracy(preds[:3], targets, 6)
