"""Class-folder OOD sets (ImageNetV2 / -Sketch / -C) checked against their published sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from focalsam_fast.data import (
    OOD_COUNTS,
    ClassFolderDataset,
    DataIntegrityError,
    ExpectedCounts,
    imagenet_c_sets,
)


def _folders(root: Path, sizes: dict[str, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for folder, n in sizes.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(root / folder / f"{i}.jpeg")
    return root


def test_published_sizes() -> None:
    assert OOD_COUNTS["v2"].per_class * OOD_COUNTS["v2"].num_classes == 10_000
    assert OOD_COUNTS["c"].per_class * OOD_COUNTS["c"].num_classes == 50_000


def test_numeric_folders_short_and_missing(tmp_path: Path, seed: int) -> None:
    root = _folders(tmp_path / "v2", {"0": 2, "1": 2, "2": 2, "10": 2}, seed)
    assert len(ClassFolderDataset(root, expected=ExpectedCounts(4, per_class=2))) == 8
    (root / "10" / "1.jpeg").unlink()
    with pytest.raises(DataIntegrityError) as info:
        ClassFolderDataset(root, expected=ExpectedCounts(4, per_class=2))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{root}: test split has 7 of 8 test images: class 3 (10) has 1 of 2 test images;")
    assert msg.endswith("the folder is incompletely extracted or copied: extract the data set again")
    with pytest.raises(DataIntegrityError, match=r"split has 4 classes \(0, 1, 2 and 1 more\), expected 5;"):
        ClassFolderDataset(root, expected=ExpectedCounts(5, per_class=2))


def test_imagenet_c_default_is_50_per_class(tmp_path: Path, seed: int) -> None:
    _folders(tmp_path / "fog" / "3", {"n01": 1}, seed)
    with pytest.raises(DataIntegrityError, match=r"fog/3: test split has 1 class \(n01\), expected 1,000"):
        list(imagenet_c_sets(tmp_path, corruptions=("fog",), severities=(3,)))
    sets = list(imagenet_c_sets(tmp_path, corruptions=("fog",), severities=(3,), expected=None))
    assert [(c, s, len(ds)) for c, s, ds in sets] == [("fog", 3, 1)]
