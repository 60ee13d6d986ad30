"""Seeded sampling: long-tailed label draws for benchmarks (labels follow the training class prior),
and the training order of a run over one or several processes (:class:`ShardSampler`)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DistributedSampler


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


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of epoch ``epoch``: ``torch.randperm(n)`` from a CPU generator seeded
    ``seed + epoch`` after one int64 draw.  That draw is the one a shuffling ``DataLoader`` makes
    from its generator (its workers' base seed) before its sampler runs, so this is exactly the
    order a one-process run gets from ``DataLoader(shuffle=True, generator=seeded(seed + epoch))``."""
    gen = torch.Generator().manual_seed(seed + epoch)
    torch.empty((), dtype=torch.int64).random_(generator=gen)
    return torch.randperm(n, generator=gen)


class ShardSampler(DistributedSampler):
    """``DistributedSampler`` over :func:`epoch_permutation` (seeded, :meth:`set_epoch` every epoch).

    Rank ``r`` of ``N`` takes positions ``r, r + N, r + 2N, ...`` of the epoch's order padded to a
    multiple of ``N`` with its first samples (torch's rule, ``drop_last=False``).  With per-rank
    batches of ``b``, step ``k`` of the ``N`` ranks together covers positions ``[kNb, (k+1)Nb)``:
    exactly the batch a one-process run of batch ``Nb`` takes at step ``k`` (the padding adds up
    to ``N - 1`` repeated samples to the last batch of an epoch when ``N`` does not divide the
    data set).  Unshuffled (``shuffle=False``: evaluation) it is torch's ``DistributedSampler``.
    """

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return super().__iter__()
        n = len(self.dataset)  # type: ignore[arg-type]
        order = epoch_permutation(n, self.seed, self.epoch).tolist()
        order += (order * math.ceil(self.total_size / max(n, 1)))[: self.total_size - n]
        return iter(order[self.rank : self.total_size : self.num_replicas])
