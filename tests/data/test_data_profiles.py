"""docs/spec.md §7 class counts for every CIFAR profile and ratio, and the seeded reference selection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from focalsam_fast.data import imbalance_counts, select_long_tailed

TOTALS = {
    (10, 100): 12406,
    (10, 10): 20431,
    (10, 50): 13996,
    (10, 200): 11203,
    (100, 100): 10847,
    (100, 10): 19573,
    (100, 50): 12608,
    (100, 200): 9502,
}


@pytest.mark.parametrize(("num_classes", "imb_ratio"), sorted(TOTALS))
def test_exp_totals(num_classes: int, imb_ratio: int) -> None:
    n_max = 5000 if num_classes == 10 else 500
    counts = imbalance_counts(n_max, num_classes, imb_ratio, "exp")
    assert len(counts) == num_classes
    assert sum(counts) == TOTALS[(num_classes, imb_ratio)]
    assert counts[0] == n_max
    assert counts[-1] == int(n_max / imb_ratio)
    assert all(a >= b for a, b in itertools.pairwise(counts))


def test_exp_cifar10_ir100_list() -> None:
    assert imbalance_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    c100 = imbalance_counts(500, 100, 100)
    assert (c100[0], c100[-1]) == (500, 5)


@pytest.mark.parametrize(("num_classes", "imb_ratio"), sorted(TOTALS))
def test_step_profile(num_classes: int, imb_ratio: int) -> None:
    n_max = 5000 if num_classes == 10 else 500
    counts = imbalance_counts(n_max, num_classes, imb_ratio, "step")
    half = num_classes // 2
    assert counts == [n_max] * half + [int(n_max / imb_ratio)] * half


def test_profile_errors() -> None:
    with pytest.raises(ValueError, match="valid: exp, step"):
        imbalance_counts(500, 10, 100, "linear")
    with pytest.raises(ValueError, match="imb_ratio"):
        imbalance_counts(500, 10, 0.5)


def _reference_selection(targets: np.ndarray, counts: list[int]) -> np.ndarray:
    """The reference IMBALANCECIFAR procedure, written independently with NumPy's global state."""
    state = np.random.get_state()
    try:
        np.random.seed(0)
        out = []
        for cls, n in zip(np.unique(targets), counts, strict=True):
            idx = np.where(targets == cls)[0]
            np.random.shuffle(idx)
            out.append(idx[:n])
        return np.concatenate(out)
    finally:
        np.random.set_state(state)


@pytest.mark.parametrize(("num_classes", "n_max"), [(10, 5000), (100, 500)])
def test_selection_matches_reference(seed: int, num_classes: int, n_max: int) -> None:
    rng = np.random.default_rng(seed)
    targets = rng.permutation(np.repeat(np.arange(num_classes), n_max))  # CIFAR-like, random order
    counts = imbalance_counts(n_max, num_classes, 100)
    idx = select_long_tailed(targets, counts)
    np.testing.assert_array_equal(idx, _reference_selection(targets, counts))
    assert len(np.unique(idx)) == len(idx) == sum(counts)
    np.testing.assert_array_equal(np.bincount(targets[idx], minlength=num_classes), counts)


def test_selection_does_not_touch_global_numpy_state(seed: int) -> None:
    np.random.seed(seed % 2**32)
    before = np.random.get_state()[1].copy()
    select_long_tailed(np.repeat(np.arange(3), 20), [20, 10, 5])
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_selection_too_few_samples() -> None:
    with pytest.raises(ValueError, match="class 1 has 2 samples"):
        select_long_tailed(np.array([0, 0, 0, 1, 1]), [3, 3])
