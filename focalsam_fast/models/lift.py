"""LIFT's AdaptFormer adapter (Shi et al., ICML 2024; docs/spec.md §9)."""

from __future__ import annotations

import math

import torch
from torch import nn


def lift_bottleneck_dim(num_classes: int) -> int:
    """r = 2**max(0, floor(log2(C / 24))): 1 / 4 / 32 / 256 for C = 10 / 100 / 1000 / 8142.

    Computed in integers (the largest e >= 0 with 24 * 2**e <= C) so powers of two are exact.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    e = 0
    while 24 * 2 ** (e + 1) <= num_classes:
        e += 1
    return 2**e


class AdaptFormer(nn.Module):
    """LayerNorm -> Linear(d, r) -> ReLU -> Linear(r, d) -> learnable scale (init 1).

    The up-projection (weight and bias) starts at zero, so the adapter outputs exactly zero at
    init and the adapted block equals the frozen one.  Down-projection: Kaiming-normal (a = sqrt 5),
    zero bias, as LIFT's code initialises it.
    """

    def __init__(self, width: int, bottleneck: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.down = nn.Linear(width, bottleneck)
        self.up = nn.Linear(bottleneck, width)
        self.scale = nn.Parameter(torch.ones(1))
        nn.init.kaiming_normal_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(self.ln(x)))) * self.scale
