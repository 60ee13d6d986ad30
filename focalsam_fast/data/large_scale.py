"""ImageNet-LT and iNaturalist 2018 from their standard list files (SPEC §7)."""

from __future__ import annotations

from pathlib import Path

from focalsam_fast.data.listfile import ListFileDataset
from focalsam_fast.data.transforms import build_transform

# Default list-file names of the public releases (Liu et al. 2019 ImageNet-LT split; iNat 2018
# lists as distributed with the decoupling / LIFT code); override with ``train_list``/``test_list``.
LIST_FILES = {
    "imagenet_lt": ("ImageNet_LT_train.txt", "ImageNet_LT_test.txt", 1000),
    "inat2018": ("iNaturalist18_train.txt", "iNaturalist18_val.txt", 8142),
}


def build_list_dataset(
    name: str,
    root: str | Path,
    train_list: str | Path | None = None,
    test_list: str | Path | None = None,
    transform: str = "imagenet",
    image_size: int | None = None,
) -> tuple[ListFileDataset, ListFileDataset, list[int], list[str]]:
    """``(train, test, class_counts, class_names)`` of ``imagenet_lt`` or ``inat2018``.

    Images live under ``root``; list files default to ``root/<standard name>`` (relative names are
    taken relative to ``root``).
    """
    default_train, default_test, num_classes = LIST_FILES[name]
    root = Path(root)
    train_path = root / (train_list or default_train)
    test_path = root / (test_list or default_test)
    train = ListFileDataset(root, train_path, build_transform(transform, True, image_size), num_classes)
    test = ListFileDataset(root, test_path, build_transform(transform, False, image_size), num_classes)
    return train, test, train.class_counts, train.class_names()
