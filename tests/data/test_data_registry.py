"""``build_dataset`` errors and the seeded long-tailed label sampler."""

from __future__ import annotations

import pytest
import torch

from focalsam_fast.data import (
    DATASETS,
    build_dataset,
    sample_long_tailed_labels,
    split_groups,
    thresholds_for,
)


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown data set 'cifar1000_lt'; valid: ") as info:
        build_dataset("cifar1000_lt")
    for name in DATASETS:
        assert name in str(info.value)


def test_root_rules(tmp_path) -> None:
    with pytest.raises(ValueError, match="needs a root"):
        build_dataset("cifar100_lt")
    with pytest.raises(ValueError, match="takes no root"):
        build_dataset("digits_lt", tmp_path)
    with pytest.raises(TypeError):
        build_dataset("digits_lt", download=True)


def test_custom_thresholds() -> None:
    data = build_dataset("digits_lt", thresholds="cifar100")
    assert data.groups == {"head": [0], "medium": [1, 2, 3], "tail": [4, 5, 6, 7, 8, 9]}


def test_sampler_seeded_and_follows_prior(seed: int) -> None:
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    a = sample_long_tailed_labels(counts, 64, seed=seed)
    assert a.dtype == torch.int64 and a.shape == (64,)
    torch.testing.assert_close(a, sample_long_tailed_labels(counts, 64, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    torch.testing.assert_close(a, sample_long_tailed_labels(counts, 64, generator=gen))
    big = sample_long_tailed_labels(counts, 200_000, seed=seed)
    freq = torch.bincount(big, minlength=10).double() / big.numel()
    prior = torch.tensor(counts, dtype=torch.float64) / sum(counts)
    torch.testing.assert_close(freq, prior, atol=5e-3, rtol=0)  # ~4.5 sigma for the largest class
    with pytest.raises(ValueError, match="seed or generator"):
        sample_long_tailed_labels(counts, 4, seed=1, generator=gen)
    with pytest.raises(ValueError, match="non-negative"):
        sample_long_tailed_labels([0, 0], 4)


@pytest.mark.parametrize(("ratio", "official"), [(10, True), (100, True), (37, False)])
def test_default_thresholds_follow_the_imbalance_ratio(monkeypatch, ratio: int, official: bool) -> None:
    """An API call without ``thresholds`` gets the data set's thresholds at its own ratio, not IR 100's."""
    counts = [5000, 3000, 900, 500, 300, 120, 90, 50, 20, 10]
    monkeypatch.setitem(
        DATASETS, "cifar10_lt", lambda root, **options: ([], [], counts, [str(k) for k in range(10)])
    )
    data = build_dataset("cifar10_lt", "unused", imb_ratio=ratio)
    assert data.thresholds == thresholds_for("cifar10_lt", ratio)
    assert data.thresholds.official is official
    assert data.groups == split_groups(counts, thresholds_for("cifar10_lt", ratio))
