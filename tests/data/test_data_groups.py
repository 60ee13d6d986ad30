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
from focalsam_fast.data.groups import thresholds_for


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


# (data set, IR) -> (tail_below, head_above) of the official CIFAR code (ResNet and CLIP scripts).
OFFICIAL = {
    ("cifar10_lt", 100): (200, 1000),
    ("cifar10_lt", 10): (835, 2319),
    ("cifar10_lt", 50): (200, 1500),
    ("cifar10_lt", 200): (100, 800),
    ("cifar100_lt", 100): (20, 100),
    ("cifar100_lt", 10): (99, 265),
    ("cifar100_lt", 50): (20, 100),
    ("cifar100_lt", 200): (10, 60),
}


@pytest.mark.parametrize(("key", "values"), list(OFFICIAL.items()))
def test_thresholds_official_per_ratio(key: tuple[str, int], values: tuple[int, int]) -> None:
    th = thresholds_for(*key)
    assert (th.tail_below, th.head_above) == values and th.official
    assert f"IR {key[1]}" in th.source and "official" in th.describe()
    assert th.to_dict() == {
        "tail_below": values[0],
        "head_above": values[1],
        "official": True,
        "source": th.source,
    }


@pytest.mark.parametrize(
    ("dataset", "ratio", "base"),
    [("cifar10_lt", 20.0, (200, 1000)), ("cifar100_lt", 37.5, (20, 100)), ("cifar10_lt", 1.0, (200, 1000))],
)
def test_thresholds_other_ratios_are_marked_assumed(dataset: str, ratio: float, base: tuple) -> None:
    th = thresholds_for(dataset, ratio)
    assert (th.tail_below, th.head_above) == base and not th.official
    assert th.source == (
        f"{dataset} IR {ratio:g} has no official thresholds (the official code has IR 10, "
        "50, 100, 200); the IR-100 values are used"
    )
    assert th.describe().endswith(f"(assumed: {th.source})")


def test_thresholds_fixed_splits_ignore_the_ratio() -> None:
    for name in ("imagenet_lt", "inat2018"):
        th = thresholds_for(name, 37.0)
        assert (th.tail_below, th.head_above, th.official) == (20, 100, True)
    digits = thresholds_for("digits_lt", 10.0)
    assert (digits.tail_below, digits.head_above, digits.official) == (10, 50, False)
    with pytest.raises(ValueError) as info:
        thresholds_for("places_lt", 100.0)
    assert str(info.value) == (
        "no group thresholds for data set 'places_lt'; valid: cifar100_lt, "
        "cifar10_lt, digits_lt, imagenet_lt, inat2018"
    )


@pytest.mark.parametrize(
    ("num", "ratio", "sizes"),
    [
        (10, 10, [4, 3, 3]),
        (10, 50, [3, 5, 2]),
        (10, 200, [4, 3, 3]),
        (100, 10, [28, 42, 30]),
        (100, 200, [40, 34, 26]),
    ],
)
def test_thresholds_groups_on_the_released_counts(num: int, ratio: int, sizes: list[int]) -> None:
    """The groups the official code forms on the CIFAR-LT counts (docs/spec.md §7 profile), by size."""
    counts = imbalance_counts(5000 if num == 10 else 500, num, ratio)
    groups = split_groups(counts, thresholds_for(f"cifar{num}_lt", ratio))
    assert [len(groups[g]) for g in ("head", "medium", "tail")] == sizes
    for k, n in enumerate(counts):  # the official rule: few n < TAIL, medium n <= HEAD, many otherwise
        tail, head = OFFICIAL[(f"cifar{num}_lt", ratio)]
        expected = "tail" if n < tail else ("medium" if n <= head else "head")
        assert k in groups[expected]


def test_thresholds_provenance_is_not_part_of_equality() -> None:
    assert thresholds_for("cifar100_lt", 50) == GroupThresholds(20, 100) == thresholds_for("cifar100_lt", 100)
    expected = "head n > 2, medium 1..2, tail n < 1 (assumed: given explicitly)"
    assert GroupThresholds(1, 2).describe() == expected
