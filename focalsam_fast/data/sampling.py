"""Seeded long-tailed label draws for benchmarks (labels follow the training class prior)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def sample_long_tailed_labels(
    class_counts: Sequence[int],
    batch_size: int,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``batch_size`` int64 labels drawn i.i.d. with probability ``n_k / sum_j n_j``.

    Pass either ``seed`` (a fresh CPU generator) or a ``generator``; the draw happens on the CPU so
    a seed gives the same labels on every device, then the result moves to ``device``.
    """
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.ndim != 1 or len(counts) == 0 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError("class_counts must be non-negative with a positive sum")
    if generator is None:
        generator = torch.Generator()
        generator.manual_seed(0 if seed is None else seed)
    labels = torch.multinomial(counts / counts.sum(), batch_size, replacement=True, generator=generator)
    return labels.to(device)
