"""Short real-data runs: the stratified training subset and the steps-per-epoch cap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from focalsam_fast.cli.train_cmd import summary
from focalsam_fast.train import Trainer, resolve_config
from focalsam_fast.train.builders import build_data
from focalsam_fast.train.subset import TrainSubset, stratified_subset, subset_counts


def _long_tailed(rng: np.random.Generator, counts: list[int]) -> TensorDataset:
    labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    return TensorDataset(torch.from_numpy(rng.standard_normal((len(labels), 3))), torch.from_numpy(labels))


def test_train_subset_counts_rule() -> None:
    assert subset_counts([5000, 500, 50, 5, 1, 0], 0.1) == [500, 50, 5, 1, 1, 0]
    assert subset_counts([7, 3], 1.0) == [7, 3]


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.02])
def test_train_subset_keeps_every_class_and_the_imbalance(seed: int, fraction: float) -> None:
    rng = np.random.default_rng(seed)
    counts = [int(2000 * 100 ** (-c / 9)) for c in range(10)]  # CIFAR-10-LT profile, IR 100
    dataset = _long_tailed(rng, counts)
    sub = stratified_subset(dataset, 10, fraction, seed)
    labels = dataset.tensors[1].numpy()
    kept = np.bincount(labels[sub.indices], minlength=10)
    assert kept.tolist() == sub.counts == [max(1, round(fraction * n)) for n in counts]
    assert (kept >= 1).all()
    assert len(set(sub.indices.tolist())) == len(sub) and sub.full_size == len(dataset)
    # proportions kept: each class's share within one image (rounding, the one-image floor) of f * n_c
    assert np.all(np.abs(kept - fraction * np.asarray(counts)) <= 1)
    assert np.argsort(-kept, kind="stable").tolist() == list(range(10))  # the order of the classes
    x, y = sub[3]
    assert int(y) == sub.targets[3] == labels[sub.indices[3]]
    assert torch.equal(x, dataset.tensors[0][sub.indices[3]])


def test_train_subset_seeded(seed: int) -> None:
    dataset = _long_tailed(np.random.default_rng(seed), [300, 100, 30])
    a, b = stratified_subset(dataset, 3, 0.3, seed), stratified_subset(dataset, 3, 0.3, seed)
    assert np.array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, stratified_subset(dataset, 3, 0.3, seed + 1).indices)


def test_train_subset_max_samples_on_digits() -> None:
    full = build_data(resolve_config(None, {}))
    n = len(full.train)
    data = build_data(resolve_config(None, {"max_train_samples": n // 4}))
    assert isinstance(data.train, TrainSubset)
    assert n // 4 - full.num_classes <= len(data.train) <= n // 4 + full.num_classes
    assert min(data.train.counts) >= 1
    assert data.class_counts == full.class_counts and data.groups == full.groups  # the run's profile
    assert build_data(resolve_config(None, {"max_train_samples": 10 * n})).train.__class__ is not TrainSubset


def test_train_subset_and_steps_cap_recorded(tmp_path: Path) -> None:
    cfg = resolve_config(
        None, {"epochs": 2, "train_fraction": 0.5, "max_steps_per_epoch": 3, "batch_size": 16}
    )
    run = Trainer(cfg, tmp_path, log=lambda s: None, progress=False).run()
    assert [h["global_step"] for h in run.history] == [3, 6]
    assert [h["train_samples"] for h in run.history] == [48, 48]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train_fraction"] == 0.5 and config["max_steps_per_epoch"] == 3
    assert config["resolved"]["train_samples"] == run.train_size < sum(run.class_counts)
    notes = config["resolved"]["short_run"]
    assert len(notes) == 2 and "stratified training subset" in notes[0] and "3 steps per epoch" in notes[1]
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["short_run"] == notes and final["train_samples"] == run.train_size
    text = summary(run)
    assert text.count("short run, not the paper's setting") == 2
    assert f"{run.train_size} of them used" in text


def test_train_subset_resume_uses_the_same_subset(tmp_path: Path) -> None:
    cfg = resolve_config(None, {"epochs": 2, "train_fraction": 0.3, "max_steps_per_epoch": 2})
    first = Trainer(cfg, tmp_path, log=lambda s: None, progress=False)
    indices = first.data.train.indices.copy()
    first.run()
    resumed = Trainer(cfg, tmp_path, resume=tmp_path / "last.pt", log=lambda s: None, progress=False)
    try:
        assert np.array_equal(resumed.data.train.indices, indices)
    finally:
        resumed.close()


def test_train_no_subset_no_notes(tmp_path: Path) -> None:
    run = Trainer(
        resolve_config(None, {"epochs": 1, "max_steps_per_epoch": 1}),
        tmp_path,
        log=lambda s: None,
        progress=False,
    ).run()
    assert run.train_size == sum(run.class_counts)
    assert run.notes == ["at most 1 step per epoch (--max-steps-per-epoch)"]
