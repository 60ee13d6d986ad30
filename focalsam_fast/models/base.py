"""Common interface of every classifier here: ``features(x)`` then the head ``fc``."""

from __future__ import annotations

import torch
from torch import nn


class FeatureClassifier(nn.Module):
    """``forward(x) = fc(features(x))``; subclasses define ``features`` and the module ``fc``.

    ``head`` is an alias of ``fc`` (CC-SAM perturbs it; LIFT trains it).
    """

    fc: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``[B, D]`` fed to the head."""
        raise NotImplementedError

    @property
    def head(self) -> nn.Module:
        """The classifier head (same module as ``fc``)."""
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
