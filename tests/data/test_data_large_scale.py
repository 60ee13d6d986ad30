"""Standard ImageNet-LT / iNaturalist 2018 list files are checked against their published sizes.

The real validation and test lists are read from ``<repo>/../shared/data/lists/`` when present
(skipped otherwise); truncated copies and synthetic lists are made in ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from focalsam_fast.data import (
    STANDARD_COUNTS,
    DataIntegrityError,
    build_dataset,
    build_transform,
    check_class_counts,
    parse_list_file,
)

LISTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lists"
REAL = {"ImageNet_LT_test.txt": 50_000, "ImageNet_LT_val.txt": 20_000, "iNaturalist18_val.txt": 24_426}


def _counts(list_file: Path, num_classes: int) -> list[int]:
    labels = [label for _, label, _ in parse_list_file(list_file)]
    return np.bincount(labels, minlength=num_classes).tolist()


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_lists_match_their_published_sizes(name: str, tmp_path: Path) -> None:
    real = LISTS / name
    if not real.is_file():
        pytest.skip(
            f"list file not found at {real}: it is expected in the shared data folder next to the "
            f"repository (../shared/data/lists/{name})"
        )
    expected = STANDARD_COUNTS[name]
    counts = _counts(real, expected.num_classes)
    assert sum(counts) == REAL[name]
    check_class_counts(real, "test", counts, expected, "fix")
    # The same list with its last line lost: caught, with the class that lost it.
    lines = real.read_text().splitlines()
    cut = tmp_path / name
    cut.write_text("\n".join(lines[:-1]) + "\n")
    last_label = int(lines[-1].split()[1])
    with pytest.raises(DataIntegrityError) as info:
        check_class_counts(cut, "test", _counts(cut, expected.num_classes), expected, "download it again")
    per_class = expected.per_class
    assert (
        f"test split has {REAL[name] - 1:,} of {REAL[name]:,} test images: class {last_label} has "
        f"{per_class - 1} of {per_class} test images; download it again" in str(info.value)
    )


def _image_root(tmp_path: Path, seed: int, test_lines: list[str]) -> Path:
    """One image per ImageNet-LT class under a custom-named training list, and ``test_lines`` as
    the standard ImageNet_LT_test.txt (whose images are not needed: its counts are checked first)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    (tmp_path / "imgs").mkdir()
    for k in range(1000):
        Image.fromarray(img).save(tmp_path / "imgs" / f"{k}.png")
    (tmp_path / "train_small.txt").write_text("".join(f"imgs/{k}.png {k}\n" for k in range(1000)))
    (tmp_path / "ImageNet_LT_test.txt").write_text("\n".join(test_lines) + "\n")
    return tmp_path


def test_truncated_standard_test_list(tmp_path: Path, seed: int) -> None:
    lines = [f"val/{k}/{i}.JPEG {k}" for k in range(1000) for i in range(50)]
    root = _image_root(tmp_path, seed, lines[:-10])
    with pytest.raises(DataIntegrityError) as info:
        build_dataset("imagenet_lt", root, train_list="train_small.txt")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(
        f"{root / 'ImageNet_LT_test.txt'}: test split has 49,990 of 50,000 test images: "
        "class 999 has 40 of 50 test images; the list file is truncated or not the standard one"
    )
    # Complete counts: the next check is that the listed images exist.
    (root / "ImageNet_LT_test.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataIntegrityError, match=r"50,000 of 50,000 listed images are missing: val/0/0\."):
        build_dataset("imagenet_lt", root, train_list="train_small.txt")


def test_standard_training_list_total(tmp_path: Path, seed: int) -> None:
    root = _image_root(tmp_path, seed, ["imgs/0.png 0"])
    (root / "ImageNet_LT_train.txt").write_text((root / "train_small.txt").read_text())
    with pytest.raises(DataIntegrityError, match=r"train split has 1,000 of 115,846 training images; the"):
        build_dataset("imagenet_lt", root, expected={"test": None})
    data = build_dataset("imagenet_lt", root, expected={"train": None, "test": None})
    assert data.class_counts == [1] * 1000 and len(data.test) == 1


@pytest.mark.parametrize(("name", "transform_set"), [("imagenet_lt", "imagenet"), ("inat2018", "inat2018")])
def test_list_data_sets_default_to_their_own_transforms(
    name: str, transform_set: str, tmp_path: Path, seed: int
) -> None:
    """``build_dataset`` without ``transform`` uses the data set's own set (iNat: its mean/std)."""
    rng = np.random.default_rng(seed)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{k}.png")
    (tmp_path / "train.txt").write_text("0.png 0\n1.png 1\n")
    data = build_dataset(
        name, tmp_path, train_list="train.txt", test_list="train.txt", expected={"train": None, "test": None}
    )
    for split, train in ((data.train, True), (data.test, False)):
        assert repr(split.transform) == repr(build_transform(transform_set, train))
