"""A tiny CNN for the embedded 8x8 digits default (with BatchNorm, like the real models)."""

from __future__ import annotations

import torch
from torch import nn

from focalsam_fast.models.base import FeatureClassifier


class DigitsCNN(FeatureClassifier):
    """conv3x3(1->c) BN ReLU, 2x2 max-pool, conv3x3(c->2c) BN ReLU, global average pool, linear."""

    def __init__(self, num_classes: int = 10, channels: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
        )
        self.fc = nn.Linear(2 * channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2*channels]`` pooled features of ``[B, 1, 8, 8]`` images."""
        return self.body(x).mean(dim=(2, 3))
