"""torchvision's ResNet-50 split into ``features`` (2048-d pooled) and head ``fc``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from focalsam_fast.models.base import FeatureClassifier
from focalsam_fast.models.heads import NormedLinear


class ResNet50(FeatureClassifier):
    """Random init by default; ``weights`` loads a local torchvision-format state dict.

    The backbone loads strictly; the checkpoint's ``fc`` is used only when its shape matches
    ``num_classes`` (and ``normed`` is off), otherwise the head keeps its fresh init.
    """

    def __init__(
        self, num_classes: int = 1000, weights: str | Path | None = None, normed: bool = False
    ) -> None:
        super().__init__()
        from torchvision.models import resnet50 as tv_resnet50  # heavy: imported on use

        self.body = tv_resnet50(weights=None)
        self.body.fc = nn.Identity()
        self.fc = NormedLinear(2048, num_classes) if normed else nn.Linear(2048, num_classes)
        if weights is not None:
            self.load_backbone(weights)

    def load_backbone(self, path: str | Path) -> None:
        """Load a torchvision ResNet-50 state dict from ``path`` (no download)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"ResNet-50 weights {path} not found (a torchvision state dict is expected)"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        head = {k[3:]: state.pop(k) for k in list(state) if k.startswith("fc.")}
        self.body.load_state_dict(state, strict=True)
        if isinstance(self.fc, nn.Linear) and head and head["weight"].shape == self.fc.weight.shape:
            self.fc.load_state_dict(head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled 2048-d features."""
        return self.body(x)
