r"""Hutchinson's trace estimator with Rademacher probes.

:math:`\mathrm{Tr}(H) = \mathbb{E}[z^T H z]` for :math:`z` with independent :math:`\pm 1` entries;
the estimate is the mean of ``probes`` samples and its standard error
:math:`s / \sqrt{n}` (``s`` the sample standard deviation).  Probes go through the operator
``batch`` at a time (one batched product each).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .eigen import MatVec


@dataclass
class TraceResult:
    """``estimate`` of Tr(H), its ``stderr``, the number of ``probes`` and every sample ``z^T H z``."""

    estimate: float
    stderr: float
    probes: int
    samples: list[float]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready copy."""
        return {
            "estimate": self.estimate,
            "stderr": self.stderr,
            "probes": self.probes,
            "samples": self.samples,
        }


def rademacher(
    rows: int, dim: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``[rows, dim]`` independent +-1 entries (drawn on the CPU: same probes on any device)."""
    return torch.randint(0, 2, (rows, dim), generator=generator).to(dtype).mul_(2).sub_(1)


def hutchinson_trace(
    matvec: MatVec,
    dim: int,
    probes: int = 64,
    batch: int = 8,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    step: Callable[[int], None] | None = None,
) -> TraceResult:
    """Estimate Tr(H) with ``probes`` Rademacher probes, ``batch`` per product (see module docstring)."""
    if probes < 2:
        raise ValueError(f"probes must be >= 2 (the standard error needs two samples), got {probes}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    samples: list[float] = []
    while len(samples) < probes:
        z = rademacher(min(batch, probes - len(samples)), dim, generator, dtype).to(device)
        samples += (z * matvec(z)).sum(1).tolist()
        if step is not None:
            step(len(z))
    mean = math.fsum(samples) / probes
    var = math.fsum((s - mean) ** 2 for s in samples) / (probes - 1)
    return TraceResult(mean, math.sqrt(var / probes), probes, samples)
