"""Cosine (normalised) linear heads: LDAM's ``NormedLinear`` and LIFT's cosine classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NormedLinear(nn.Module):
    """``scale * normalize(x) @ normalize(W).T`` with ``W`` of shape ``[out, in]`` and no bias.

    ``scale=1`` is LDAM's head (the loss applies s = 30); LIFT uses ``scale=25``.  Rows of ``W`` start
    as unit vectors in uniformly random directions of the cube (the references' uniform(-1, 1) init
    followed by row normalisation).
    """

    def __init__(self, in_features: int, out_features: int, scale: float = 1.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        with torch.no_grad():
            self.weight.uniform_(-1, 1)
            self.weight.copy_(F.normalize(self.weight, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))
        return logits * self.scale if self.scale != 1.0 else logits

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale}"
