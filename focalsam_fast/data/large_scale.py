"""ImageNet-LT and iNaturalist 2018 from their standard list files (docs/spec.md §7)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from focalsam_fast.data.integrity import ExpectedCounts
from focalsam_fast.data.listfile import ListFileDataset
from focalsam_fast.data.transforms import build_transform, transform_for

# Default list-file names of the public releases (Liu et al. 2019 ImageNet-LT split; iNat 2018
# lists as distributed with the decoupling / LIFT code); override with ``train_list``/``test_list``.
LIST_FILES = {
    "imagenet_lt": ("ImageNet_LT_train.txt", "ImageNet_LT_test.txt", 1000),
    "inat2018": ("iNaturalist18_train.txt", "iNaturalist18_val.txt", 8142),
}

# Sizes of the standard list files, checked when a list of that name is read: ImageNet-LT (Liu et
# al. 2019: 115,846 training images, 20 / 50 per class in val / test), iNaturalist 2018 (437,513
# training images, 3 per class in val).  Training lists are long-tailed: total and every class present.
STANDARD_COUNTS = {
    "ImageNet_LT_train.txt": ExpectedCounts(1000, total=115_846),
    "ImageNet_LT_val.txt": ExpectedCounts(1000, per_class=20),
    "ImageNet_LT_test.txt": ExpectedCounts(1000, per_class=50),
    "iNaturalist18_train.txt": ExpectedCounts(8142, total=437_513),
    "iNaturalist18_val.txt": ExpectedCounts(8142, per_class=3),
}


def build_list_dataset(
    name: str,
    root: str | Path,
    train_list: str | Path | None = None,
    test_list: str | Path | None = None,
    transform: str | None = None,
    image_size: int | None = None,
    expected: Mapping[str, ExpectedCounts | None] | None = None,
) -> tuple[ListFileDataset, ListFileDataset, list[int], list[str]]:
    """``(train, test, class_counts, class_names)`` of ``imagenet_lt`` or ``inat2018``.

    Images live under ``root``; list files default to ``root/<standard name>`` (relative names are
    taken relative to ``root``).  Each list is checked against ``expected[split]`` (``None``: no
    count check; default: its :data:`STANDARD_COUNTS` entry when it has a standard name) and every
    listed image must exist (:class:`~focalsam_fast.data.integrity.DataIntegrityError` otherwise).
    ``transform``: a transform set (default: the data set's own non-CLIP set, see
    :func:`~focalsam_fast.data.transforms.transform_for`).
    """
    transform = transform or transform_for(name, False)
    default_train, default_test, num_classes = LIST_FILES[name]
    root = Path(root)
    paths = {"train": root / (train_list or default_train), "test": root / (test_list or default_test)}
    sets = {
        split: ListFileDataset(
            root,
            path,
            build_transform(transform, split == "train", image_size),
            num_classes,
            (expected or {}).get(split, STANDARD_COUNTS.get(path.name)),
            split,
        )
        for split, path in paths.items()
    }
    train, test = sets["train"], sets["test"]
    return train, test, train.class_counts, train.class_names()
