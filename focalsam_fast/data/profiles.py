"""Long-tailed class-count profiles and the seeded per-class subsampling of docs/spec.md §7."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROFILES = ("exp", "step")


def imbalance_counts(n_max: int, num_classes: int, imb_ratio: float, profile: str = "exp") -> list[int]:
    """Per-class training counts of a long-tailed subset (docs/spec.md §7).

    ``exp``: ``n_k = int(n_max * (1/IR)**(k/(C-1)))``; ``step``: the first ``C//2`` classes keep
    ``n_max``, the others ``int(n_max / IR)``.  ``imb_ratio`` is IR = n_max / n_min (>= 1).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if imb_ratio < 1:
        raise ValueError(f"imb_ratio must be >= 1 (n_max / n_min), got {imb_ratio}")
    imb_factor = 1.0 / imb_ratio
    if profile == "exp":
        return [int(n_max * imb_factor ** (k / (num_classes - 1.0))) for k in range(num_classes)]
    if profile == "step":
        half = num_classes // 2
        return [int(n_max)] * half + [int(n_max * imb_factor)] * (num_classes - half)
    raise ValueError(f"unknown imbalance profile {profile!r}; valid: {', '.join(PROFILES)}")


def select_long_tailed(
    targets: Sequence[int] | np.ndarray, counts: Sequence[int], seed: int = 0
) -> np.ndarray:
    """Indices of the long-tailed subset, drawn exactly like the reference ``IMBALANCECIFAR``.

    A legacy NumPy generator is seeded once with ``seed``; then for k = 0..C-1 in order the
    ascending original indices of class k are shuffled in place and the first ``counts[k]`` kept.
    The result is class-by-class, each class in its shuffled order (the reference's sample order).
    ``RandomState(seed)`` draws the same stream as ``np.random.seed(seed)`` without touching
    NumPy's global state.
    """
    targets_np = np.asarray(targets, dtype=np.int64)
    rng = np.random.RandomState(seed)
    chosen = []
    for k, n_k in enumerate(counts):
        idx = np.where(targets_np == k)[0]
        if len(idx) < n_k:
            raise ValueError(f"class {k} has {len(idx)} samples, fewer than the {n_k} requested")
        rng.shuffle(idx)
        chosen.append(idx[:n_k])
    return np.concatenate(chosen)
