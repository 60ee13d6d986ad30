"""Which classes form each analysed group, and the group's training samples as tensors."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .errors import AnalysisError


def select_groups(
    data_groups: Mapping[str, Sequence[int]],
    num_classes: int,
    groups: Sequence[str] | None = None,
    classes: Sequence[Sequence[int]] | None = None,
) -> dict[str, list[int]]:
    """The groups to analyse: the named data-set groups (default: every non-empty one), or one group
    per entry of ``classes`` (named ``classes 0,1,2``).  Unknown names or classes, and empty groups,
    raise :class:`AnalysisError`."""
    if groups is not None and classes is not None:
        raise AnalysisError("give either groups (e.g. head,tail) or classes (e.g. 0,1,2), not both")
    if classes is not None:
        out: dict[str, list[int]] = {}
        for cls in classes:
            if not cls:
                raise AnalysisError("an empty class list was given; pass class indices like 0,1,2")
            bad = [c for c in cls if not 0 <= c < num_classes]
            if bad:
                raise AnalysisError(f"unknown class {bad[0]}: this data set has classes 0..{num_classes - 1}")
            out["classes " + ",".join(map(str, cls))] = sorted(set(cls))
        return out
    names = list(groups) if groups is not None else [g for g, c in data_groups.items() if c]
    if not names:
        raise AnalysisError("no group given; valid: " + ", ".join(data_groups))
    for name in names:
        if name not in data_groups:
            raise AnalysisError(f"unknown group {name!r}; valid: {', '.join(data_groups)}")
        if not data_groups[name]:
            raise AnalysisError(
                f"group {name!r} has no classes in this data set (groups with classes: "
                f"{', '.join(g for g, c in data_groups.items() if c)})"
            )
    return {name: list(data_groups[name]) for name in names}


def dataset_labels(dataset: Dataset) -> Tensor:
    """Labels of every sample (from the tensors or the ``targets`` array when the set has them)."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].long()
    if hasattr(dataset, "targets"):
        return torch.as_tensor(dataset.targets).long()
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])


def without_augmentation(train: Dataset, test: Dataset) -> Dataset:
    """``train`` with the test-time transform (no random augmentation) when both sets have one."""
    if hasattr(train, "transform") and hasattr(test, "transform"):
        train = copy.copy(train)
        train.transform = test.transform
    return train


def group_samples(
    dataset: Dataset,
    classes: Sequence[int],
    samples: int | None = None,
    generator: torch.Generator | None = None,
    name: str = "group",
) -> tuple[Tensor, Tensor]:
    """``(inputs, targets)`` of the samples of ``classes`` (a seeded random subset of ``samples`` of
    them when given), in data-set order."""
    labels = dataset_labels(dataset)
    idx = torch.nonzero(torch.isin(labels, torch.as_tensor(list(classes)))).flatten()
    if len(idx) == 0:
        raise AnalysisError(f"{name} (classes {list(classes)}) has no training samples")
    if samples is not None:
        if samples < 1:
            raise AnalysisError(f"--samples must be >= 1, got {samples}")
        if samples < len(idx):
            idx = idx[torch.randperm(len(idx), generator=generator)[:samples]].sort().values
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[0][idx], dataset.tensors[1][idx]
    else:
        batches = list(DataLoader(Subset(dataset, idx.tolist()), batch_size=256))
        x, y = torch.cat([b[0] for b in batches]), torch.cat([torch.as_tensor(b[1]) for b in batches])
    return x, y.long()
