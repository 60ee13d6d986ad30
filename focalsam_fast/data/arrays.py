"""A data set over an in-memory uint8 image array (CIFAR from torchvision or the JPEG archive)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


class ArrayDataset(Dataset):
    """``images`` uint8 ``[N, H, W, 3]``, ``targets`` int ``[N]``; items are ``(transform(PIL), label)``.

    Without a transform an item is the uint8 image as a ``[3, H, W]`` float tensor in [0, 1].
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
    ) -> None:
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = self.images[index]
        if self.transform is None:
            return torch.from_numpy(img).permute(2, 0, 1).float().div_(255), int(self.targets[index])
        return self.transform(Image.fromarray(img)), int(self.targets[index])
