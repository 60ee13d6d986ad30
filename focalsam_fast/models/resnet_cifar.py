"""ResNet-32 for CIFAR (docs/spec.md §9; He et al. 2016, as in the LDAM-DRW / Focal-SAM references)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from focalsam_fast.models.base import FeatureClassifier
from focalsam_fast.models.heads import NormedLinear


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers; option-A shortcut (stride-2 subsample + zero channel padding)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - in_planes

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Identity, or option A: ``x[:, :, ::2, ::2]`` zero-padded by ``pad/2`` channels each side."""
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(FeatureClassifier):
    """3x3 conv 16 + 3 stages of ``blocks_per_stage`` basic blocks (16/32/64), GAP, linear head.

    ``blocks_per_stage=5`` is ResNet-32 (~0.46M parameters).  ``normed=True`` uses the cosine
    :class:`NormedLinear` head for LDAM.  Conv and linear weights: Kaiming-normal.
    """

    def __init__(self, num_classes: int = 10, blocks_per_stage: int = 5, normed: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = NormedLinear(64, num_classes) if normed else nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled 64-d features."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return out.mean(dim=(2, 3))


def resnet32(num_classes: int = 10, normed: bool = False) -> ResNetCifar:
    """ResNet-32 for 32x32 inputs."""
    return ResNetCifar(num_classes, blocks_per_stage=5, normed=normed)
