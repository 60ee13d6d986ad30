r"""1-D and 2-D loss landscapes along filter-normalised random directions (Li et al., 2018).

A direction :math:`d` has the shape of the parameters; for every parameter with two or more
dimensions each filter (slice along dim 0) of a standard normal draw is rescaled to the norm of the
same filter of :math:`\theta`: :math:`d_f \leftarrow d_f\,\|\theta_f\| / \|d_f\|`.  One-dimensional
parameters (biases, BatchNorm scales and shifts) get zero, so the plots are comparable across
models whose weights have different scales.  The landscape is
:math:`L_G(\theta + a\,d_1)` (1-D) or :math:`L_G(\theta + a\,d_1 + b\,d_2)` (2-D) on a grid of
``a, b`` in ``[-span, span]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .hvp import HessianOperator


@dataclass
class Landscape:
    """``coords`` (grid of ``a``, also of ``b`` in 2-D) and the ``loss`` values (``[n]`` or ``[n, n]``)."""

    coords: list[float]
    loss: list[float] | list[list[float]]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready copy."""
        return {"coords": self.coords, "loss": self.loss}


def filter_normalized_direction(op: HessianOperator, generator: torch.Generator | None = None) -> Tensor:
    """One flat direction ``[P]`` for the operator's parameters (see the module docstring)."""
    parts = []
    for p in op.params:
        w = p.detach()
        if w.dim() <= 1:
            parts.append(torch.zeros(w.numel(), dtype=w.dtype, device=w.device))
            continue
        d = torch.randn(w.shape, generator=generator, dtype=w.dtype).to(w.device)
        wf, df = w.reshape(len(w), -1), d.reshape(len(d), -1)
        scale = wf.norm(dim=1, keepdim=True) / df.norm(dim=1, keepdim=True).clamp_min(1e-12)
        parts.append((df * scale).reshape(-1))
    return torch.cat(parts)


def landscape_1d(
    op: HessianOperator,
    direction: Tensor,
    span: float = 1.0,
    points: int = 41,
    step: Callable[[], None] | None = None,
) -> Landscape:
    """Group loss along ``theta + a d`` for ``points`` values of ``a`` in ``[-span, span]``."""
    theta = op.flat_params()
    coords = np.linspace(-span, span, points).tolist()
    losses = []
    for a in coords:
        losses.append(op.loss_at(theta + a * direction))
        if step is not None:
            step()
    return Landscape(coords, losses)


def landscape_2d(
    op: HessianOperator,
    d1: Tensor,
    d2: Tensor,
    span: float = 1.0,
    points: int = 21,
    step: Callable[[], None] | None = None,
) -> Landscape:
    """Group loss on the ``points x points`` grid ``theta + a d1 + b d2`` (rows: ``b``, columns: ``a``)."""
    theta = op.flat_params()
    coords = np.linspace(-span, span, points).tolist()
    rows = []
    for b in coords:
        rows.append([op.loss_at(theta + a * d1 + b * d2) for a in coords])
        if step is not None:
            step()
    return Landscape(coords, rows)
