"""``build_dataset``: one entry point for every data set of the project."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from focalsam_fast.data.cifar import build_cifar_lt
from focalsam_fast.data.digits import build_digits_lt
from focalsam_fast.data.groups import GroupThresholds, group_thresholds, split_groups, thresholds_for
from focalsam_fast.data.large_scale import build_list_dataset


@dataclass
class LongTailedData:
    """Training/test sets with the training class counts, class names and group thresholds."""

    train: Dataset
    test: Dataset
    class_counts: list[int]
    class_names: list[str]
    thresholds: GroupThresholds
    groups: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.groups = split_groups(self.class_counts, self.thresholds)

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return len(self.class_counts)


def _needs_root(name: str, root: str | Path | None) -> Path:
    if root is None:
        raise ValueError(f"data set {name!r} needs a root (folder or archive path)")
    return Path(root)


def _cifar(num_classes: int) -> Callable[..., tuple]:
    def build(root: str | Path | None, **options: Any) -> tuple:
        return build_cifar_lt(_needs_root(f"cifar{num_classes}_lt", root), num_classes, **options)

    return build


def _list(name: str) -> Callable[..., tuple]:
    def build(root: str | Path | None, **options: Any) -> tuple:
        return build_list_dataset(name, _needs_root(name, root), **options)

    return build


def _digits(root: str | Path | None, **options: Any) -> tuple:
    if root is not None:
        raise ValueError("digits_lt is embedded in scikit-learn and takes no root")
    return build_digits_lt(**options)


# name -> builder
DATASETS: dict[str, Callable[..., tuple]] = {
    "cifar10_lt": _cifar(10),
    "cifar100_lt": _cifar(100),
    "imagenet_lt": _list("imagenet_lt"),
    "inat2018": _list("inat2018"),
    "digits_lt": _digits,
}


def build_dataset(
    name: str,
    root: str | Path | None = None,
    thresholds: GroupThresholds | str | None = None,
    **options: Any,
) -> LongTailedData:
    """Build a data set by name (see ``DATASETS``); unknown names raise ``ValueError`` listing them.

    ``root``: torchvision CIFAR folder or JPEG tar archive (CIFAR), image root with list files
    (ImageNet-LT, iNat), ``None`` for ``digits_lt``.  ``thresholds``: head/medium/tail thresholds
    or preset name (default: the data set's thresholds at its imbalance ratio, see
    :func:`~focalsam_fast.data.groups.thresholds_for`).  ``options`` go to the builder:
    CIFAR -> :func:`build_cifar_lt` (imb_ratio, profile, transform, image_size, download, cache_dir,
    seed); ImageNet-LT / iNat -> :func:`build_list_dataset` (train_list, test_list, transform,
    image_size); digits -> :func:`build_digits_lt` (imb_ratio, profile, test_per_class, seed).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    train, test, counts, names = DATASETS[name](root, **options)
    if thresholds is None:
        thresholds = thresholds_for(name, options.get("imb_ratio"))
    th = group_thresholds(thresholds) if isinstance(thresholds, str) else thresholds
    return LongTailedData(train, test, list(counts), list(names), th)
