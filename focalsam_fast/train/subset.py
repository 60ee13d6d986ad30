"""Stratified training subsets for short real-data runs (``--train-fraction`` / ``--max-train-samples``).

A subset keeps the long-tailed profile: class ``c`` with ``n_c`` training images keeps

    k_c = max(1, round(f * n_c))

of them (``f`` the fraction; ``--max-train-samples M`` uses ``f = M / N`` with ``N = sum n_c``), so
every class keeps at least one image and the class proportions (the imbalance) are kept up to the
rounding.  With ``--max-train-samples`` the one-image floor can push the total a few images past
``M`` (at most one per class).  Which images are kept is a seeded draw (the run's seed), the same
for training, ``--resume`` and ``eval``.

The data set's ``class_counts`` (and so the loss prior, the head/medium/tail groups and ImbSAM's
tail classes) stay those of the full training set: the subset only shortens the epochs.  This is
not the paper's setting; the run's config records it and the summary says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .config import TrainConfig
from .errors import SetupError


def dataset_labels(dataset: Any) -> np.ndarray:
    """The class label of every sample: a ``targets`` attribute or the last tensor of a
    ``TensorDataset``."""
    targets = getattr(dataset, "targets", None)
    if targets is None and hasattr(dataset, "tensors"):
        targets = dataset.tensors[-1]
    if targets is None:
        raise SetupError(
            f"cannot take a stratified training subset of {type(dataset).__name__}: it "
            "exposes no labels (targets); drop --train-fraction / --max-train-samples"
        )
    return np.asarray(targets, dtype=np.int64).reshape(-1)


def subset_counts(counts: Sequence[int], fraction: float) -> list[int]:
    """``k_c = max(1, round(fraction * n_c))`` per class (classes without images keep none)."""
    return [min(n, max(1, round(fraction * n))) if n > 0 else 0 for n in counts]


def subset_fraction(cfg: TrainConfig, total: int) -> float | None:
    """The fraction of the training set a run keeps, ``None`` for the whole set."""
    if cfg.train_fraction is not None:
        return None if cfg.train_fraction >= 1 else cfg.train_fraction
    if cfg.max_train_samples is not None and cfg.max_train_samples < total:
        return cfg.max_train_samples / total
    return None


class TrainSubset(Dataset):
    """The kept samples of ``dataset`` (``indices``), with their per-class ``counts`` and the full
    set's size ``full_size``."""

    def __init__(self, dataset: Any, indices: np.ndarray, counts: list[int]) -> None:
        self.dataset, self.indices, self.counts = dataset, indices, counts
        self.full_size = len(dataset)
        self.targets = dataset_labels(dataset)[indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]


def stratified_subset(dataset: Any, num_classes: int, fraction: float, seed: int) -> TrainSubset:
    """The first ``k_c`` images of class ``c`` in a permutation seeded by ``seed`` (see the module
    docstring), in the data set's order."""
    labels = dataset_labels(dataset)
    counts = np.bincount(labels, minlength=num_classes).tolist()
    keep = subset_counts(counts, fraction)
    rng = np.random.default_rng([seed, 0x5EB5E7])
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in enumerate(keep)]
    indices = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return TrainSubset(dataset, indices, keep)


def _steps(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"


def short_run_notes(cfg: TrainConfig, train: Any) -> list[str]:
    """What makes a run shorter than the paper's setting, one phrase each (empty: none)."""
    notes = []
    if isinstance(train, TrainSubset):
        how = (
            f"--train-fraction {cfg.train_fraction:g}"
            if cfg.train_fraction is not None
            else f"--max-train-samples {cfg.max_train_samples}"
        )
        notes.append(
            f"stratified training subset of {len(train)}/{train.full_size} images ({how}, "
            f"every class kept, counts {min(train.counts)}..{max(train.counts)})"
        )
    if cfg.max_steps_per_epoch is not None:
        notes.append(f"at most {_steps(cfg.max_steps_per_epoch)} per epoch (--max-steps-per-epoch)")
    if cfg.max_steps is not None:
        notes.append(f"at most {_steps(cfg.max_steps)} in all (--max-steps)")
    return notes
