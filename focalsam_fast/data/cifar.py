"""CIFAR-10/100-LT (docs/spec.md §7) from torchvision's CIFAR folders or from a JPEG tar archive."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from torchvision import datasets as tv_datasets
from torchvision.datasets.utils import check_integrity

from focalsam_fast.data.arrays import ArrayDataset
from focalsam_fast.data.cifar_jpeg import ImageArrays, check_splits, read_jpeg_archive
from focalsam_fast.data.integrity import CIFAR_COUNTS, ExpectedCounts, first_examples, integrity_error
from focalsam_fast.data.profiles import imbalance_counts, select_long_tailed
from focalsam_fast.data.transforms import build_transform

_TORCHVISION = {10: tv_datasets.CIFAR10, 100: tv_datasets.CIFAR100}


def _damaged_files(folder: Path, cls: type) -> list[str]:
    """The files of torchvision's release that are missing under ``folder`` or fail their md5 check."""
    files = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
    return [
        f"{name} is missing" if not (folder / name).is_file() else f"{name} fails its md5 check"
        for name, md5 in files
        if not check_integrity(folder / name, md5)
    ]


def load_cifar_torchvision(
    root: str | Path,
    num_classes: int,
    download: bool = False,
    expected: Mapping[str, ExpectedCounts] | None = None,
) -> dict[str, ImageArrays]:
    """Train and test splits of CIFAR-10/100 from torchvision's folder under ``root``.

    Nothing is downloaded unless ``download=True``; a missing folder raises ``FileNotFoundError``
    saying where the files belong, missing or damaged batch files and per-class counts other than
    ``expected`` (default: CIFAR's 5,000/1,000 or 500/100 per class) raise
    :class:`DataIntegrityError` naming them.
    """
    cls = _TORCHVISION[num_classes]
    folder = Path(root) / cls.base_folder
    fix = f"extract {cls.filename} ({cls.url}) into {root}, or pass download=True where a network is up"
    out = {}
    for split in ("train", "test"):
        try:
            ds = cls(str(root), train=split == "train", download=download)
        except RuntimeError as exc:
            if not folder.is_dir():
                raise FileNotFoundError(f"CIFAR-{num_classes} not found: no folder {folder}; {fix}") from exc
            damaged = _damaged_files(folder, cls) or [str(exc)]
            raise integrity_error(folder, first_examples(damaged), fix) from exc
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
            raise integrity_error(
                folder, f"a batch file cannot be unpickled or has the wrong shape ({exc!r})", fix
            ) from exc
        out[split] = ImageArrays(
            np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), list(ds.classes)
        )
    check_splits(folder, out, CIFAR_COUNTS[num_classes] if expected is None else expected, fix)
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
    expected: Mapping[str, ExpectedCounts] | None = None,
) -> tuple[ArrayDataset, ArrayDataset, list[int], list[str]]:
    """Long-tailed CIFAR training set and the full balanced test set.

    ``root`` is either torchvision's data folder or a JPEG tar archive file (``read_jpeg_archive``,
    decoded arrays optionally cached in ``cache_dir``).  Returns ``(train, test, class_counts,
    class_names)``; the training subset is drawn with :func:`select_long_tailed` (seed 0 reproduces
    the reference).  Both sources are checked against ``expected`` per-class counts (default:
    :data:`~focalsam_fast.data.integrity.CIFAR_COUNTS`; the largest class of the profile is the
    expected training count per class); a damaged or incomplete source raises
    :class:`~focalsam_fast.data.integrity.DataIntegrityError`.
    """
    if num_classes not in _TORCHVISION:
        raise ValueError(f"CIFAR has 10 or 100 classes, got {num_classes}")
    expected = CIFAR_COUNTS[num_classes] if expected is None else expected
    if any(e.num_classes != num_classes for e in expected.values()):
        got = ", ".join(str(n) for n in sorted({e.num_classes for e in expected.values()}))
        raise ValueError(f"expected counts for {got} classes; CIFAR-{num_classes} has {num_classes}")
    if expected["train"].per_class is None:
        raise ValueError("CIFAR is balanced: expected['train'] needs per_class (images in every class)")
    root = Path(root)
    if root.is_file():
        splits = read_jpeg_archive(root, cache_dir, expected)
    else:
        splits = load_cifar_torchvision(root, num_classes, download, expected)
    train, test = splits["train"], splits["test"]
    counts = imbalance_counts(expected["train"].per_class, num_classes, imb_ratio, profile)
    idx = select_long_tailed(train.labels, counts, seed)
    train_ds = ArrayDataset(
        train.images[idx], train.labels[idx], build_transform(transform, True, image_size)
    )
    test_ds = ArrayDataset(test.images, test.labels, build_transform(transform, False, image_size))
    return train_ds, test_ds, counts, train.class_names
