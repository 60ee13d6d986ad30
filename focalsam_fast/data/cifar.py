"""CIFAR-10/100-LT (SPEC §7) from torchvision's CIFAR folders or from a JPEG tar archive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision import datasets as tv_datasets

from focalsam_fast.data.arrays import ArrayDataset
from focalsam_fast.data.cifar_jpeg import ImageArrays, read_jpeg_archive
from focalsam_fast.data.profiles import imbalance_counts, select_long_tailed
from focalsam_fast.data.transforms import build_transform

_TORCHVISION = {10: (tv_datasets.CIFAR10, 5000), 100: (tv_datasets.CIFAR100, 500)}


def load_cifar_torchvision(
    root: str | Path, num_classes: int, download: bool = False
) -> dict[str, ImageArrays]:
    """Train and test splits of CIFAR-10/100 from torchvision's folder under ``root``.

    Nothing is downloaded unless ``download=True``; a missing folder raises ``FileNotFoundError``
    saying where the files belong.
    """
    cls, _ = _TORCHVISION[num_classes]
    out = {}
    for split in ("train", "test"):
        try:
            ds = cls(str(root), train=split == "train", download=download)
        except RuntimeError as exc:
            raise FileNotFoundError(
                f"CIFAR-{num_classes} not found or corrupt under {Path(root) / cls.base_folder}; extract "
                f"{cls.filename} ({cls.url}) into {root}, or pass download=True where a network is available"
            ) from exc
        out[split] = ImageArrays(
            np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), list(ds.classes)
        )
    return out


def build_cifar_lt(
    root: str | Path,
    num_classes: int = 10,
    imb_ratio: float = 100,
    profile: str = "exp",
    transform: str = "cifar",
    image_size: int | None = None,
    download: bool = False,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> tuple[ArrayDataset, ArrayDataset, list[int], list[str]]:
    """Long-tailed CIFAR training set and the full balanced test set.

    ``root`` is either torchvision's data folder or a JPEG tar archive file (``read_jpeg_archive``,
    decoded arrays optionally cached in ``cache_dir``).  Returns ``(train, test, class_counts,
    class_names)``; the training subset is drawn with :func:`select_long_tailed` (seed 0 reproduces
    the reference).
    """
    if num_classes not in _TORCHVISION:
        raise ValueError(f"CIFAR has 10 or 100 classes, got {num_classes}")
    root = Path(root)
    if root.is_file():
        splits = read_jpeg_archive(root, cache_dir)
        if len(splits["train"].class_names) != num_classes:
            raise ValueError(f"{root} has {len(splits['train'].class_names)} classes, expected {num_classes}")
    else:
        splits = load_cifar_torchvision(root, num_classes, download)
    train, test = splits["train"], splits["test"]
    counts = imbalance_counts(_TORCHVISION[num_classes][1], num_classes, imb_ratio, profile)
    idx = select_long_tailed(train.labels, counts, seed)
    train_ds = ArrayDataset(
        train.images[idx], train.labels[idx], build_transform(transform, True, image_size)
    )
    test_ds = ArrayDataset(test.images, test.labels, build_transform(transform, False, image_size))
    return train_ds, test_ds, counts, train.class_names
