"""``path label`` list files (ImageNet-LT / iNat), class folders and ImageNet-C."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from focalsam_fast.data import (
    ALEXNET_ERRORS,
    ClassFolderDataset,
    CorruptImageError,
    DataIntegrityError,
    ExpectedCounts,
    ListFileDataset,
    ListFileError,
    build_dataset,
    corruption_errors,
    imagenet_c_sets,
    parse_list_file,
)


def _save_random(path: Path, rng: np.random.Generator, size: int = 20) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(img).save(path)
    return img


@pytest.fixture
def image_root(tmp_path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for label, wnid in enumerate(["n001", "n002", "n003"]):
        for i in range(3 - label):
            rel = f"train/{wnid}/{wnid}_{i}.png"
            _save_random(tmp_path / rel, rng)
            lines.append(f"{rel} {label}")
    (tmp_path / "ImageNet_LT_train.txt").write_text("\n".join(lines) + "\n\n")
    (tmp_path / "ImageNet_LT_test.txt").write_text("\n".join(lines[:2]) + "\n")
    return tmp_path


def test_list_dataset_reads_images(image_root: Path) -> None:
    ds = ListFileDataset(image_root, image_root / "ImageNet_LT_train.txt", num_classes=4)
    assert len(ds) == 6 and ds.class_counts == [3, 2, 1, 0]
    assert ds.class_names() == ["n001", "n002", "n003", "3"]
    img, label = ds[3]
    expected = np.asarray(Image.open(image_root / "train/n002/n002_0.png"))
    np.testing.assert_array_equal(np.asarray(img), expected)
    assert label == 1


def test_build_imagenet_lt_from_root(image_root: Path) -> None:
    # Six images under the standard list names: their standard sizes are switched off here.
    no_check = {"train": None, "test": None}
    data = build_dataset("imagenet_lt", image_root, transform="imagenet", image_size=16, expected=no_check)
    assert data.num_classes == 1000 and data.class_counts[:4] == [3, 2, 1, 0]
    x, y = data.test[1]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 0
    assert len(data.groups["tail"]) == 1000  # every class has < 20 images here


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a.png 1 extra", "expected '<path> <label>'"),
        ("a.png", "expected '<path> <label>'"),
        ("a.png cat", "label 'cat' is not an integer"),
        ("a.png -2", "negative label -2"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text(f"x.png 0\n\n{line}\n")
    with pytest.raises(ListFileError, match=rf"list\.txt:3: {message}"):
        parse_list_file(lst)


def test_list_file_other_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        parse_list_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ListFileError, match="no entries"):
        parse_list_file(tmp_path / "empty.txt")
    (tmp_path / "big.txt").write_text("a.png 0\nb.png 7\n")
    with pytest.raises(ListFileError, match=r"big\.txt:2: label 7 >= num_classes 5"):
        ListFileDataset(tmp_path, tmp_path / "big.txt", num_classes=5)


def test_corrupt_image_names_file_and_line(image_root: Path) -> None:
    (image_root / "train/n003/broken.png").write_bytes(b"\x89PNG garbage")
    lst = image_root / "with_broken.txt"
    lst.write_text("train/n001/n001_0.png 0\ntrain/n003/broken.png 2\n")
    ds = ListFileDataset(image_root, lst)
    ds[0]
    with pytest.raises(CorruptImageError, match=r"broken\.png \(listed at .*with_broken\.txt:2\)"):
        ds[1]


def test_class_folders_wnid_and_numeric(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for wnid in ("n02", "n01"):
        _save_random(tmp_path / "sketch" / wnid / "a.JPEG", rng)
    for idx in ("10", "2"):
        _save_random(tmp_path / "v2" / idx / "a.jpeg", rng)
    assert ClassFolderDataset(tmp_path / "sketch").targets == [0, 1]  # n01 -> 0, n02 -> 1
    assert ClassFolderDataset(tmp_path / "v2").targets == [10, 2]  # numeric folder = label
    assert ClassFolderDataset(tmp_path / "sketch", class_to_idx={"n01": 7, "n02": 3}).targets == [7, 3]
    with pytest.raises(KeyError, match="n02"):
        ClassFolderDataset(tmp_path / "sketch", class_to_idx={"n01": 0})
    with pytest.raises(FileNotFoundError, match="missing"):
        ClassFolderDataset(tmp_path / "missing")


def test_imagenet_c_layout_and_mce(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for corruption in ("fog", "snow"):
        for severity in (1, 2):
            _save_random(tmp_path / corruption / str(severity) / "n01" / "x.JPEG", rng)
    one = ExpectedCounts(1, per_class=1)
    sets = list(imagenet_c_sets(tmp_path, corruptions=("fog", "snow"), severities=(1, 2), expected=one))
    assert [(c, s, len(ds)) for c, s, ds in sets] == [
        ("fog", 1, 1),
        ("fog", 2, 1),
        ("snow", 1, 1),
        ("snow", 2, 1),
    ]

    # AlexNet's own accuracies give CE = 1 for every corruption.
    alexnet = {c: [1 - e] * 5 for c, e in ALEXNET_ERRORS.items()}
    summary = corruption_errors(alexnet)
    assert summary["mCE"] == pytest.approx(1.0)
    accs = {"fog": [0.9, 0.8, 0.7, 0.6, 0.5], "snow": [0.5] * 5}
    summary = corruption_errors(accs)
    assert summary["CE/fog"] == pytest.approx(0.3 / 0.819324)
    assert summary["mCE"] == pytest.approx((0.3 / 0.819324 + 0.5 / 0.866816) / 2)
    assert summary["mean_acc"] == pytest.approx(0.6)
    with pytest.raises(KeyError, match="no AlexNet error"):
        corruption_errors({"rain": [0.5]})
    assert len(ALEXNET_ERRORS) == 15


def test_missing_and_unreadable_images_are_counted_at_construction(image_root: Path) -> None:
    (image_root / "train/n002/empty.png").write_bytes(b"")
    lst = image_root / "damaged.txt"
    lst.write_text(
        "train/n001/n001_0.png 0\ntrain/n001/gone.png 0\ntrain/n002/empty.png 1\n"
        "train/n009/x.png 2\ntrain/n003 2\n"
    )
    with pytest.raises(DataIntegrityError) as info:
        ListFileDataset(image_root, lst)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{lst}: under image root {image_root}, ")
    assert "2 of 5 listed images are missing: train/n001/gone.png (line 2), train/n009/x.png (line 4);" in msg
    assert "2 cannot be read: train/n002/empty.png (line 3, empty), train/n003 (line 5, not a file); " in msg
    assert msg.endswith(
        "extract the images so that <image root>/<listed path> exists for every line, or fix the list file"
    )
    # Unchecked, the data set builds and the bad image fails when read.
    ds = ListFileDataset(image_root, lst, check_files=False)
    with pytest.raises(CorruptImageError, match=r"gone\.png \(listed at .*damaged\.txt:2\)"):
        ds[1]


def test_many_missing_images_show_the_first_three(tmp_path: Path) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"img/{k}.png {k % 2}\n" for k in range(8)))
    with pytest.raises(
        DataIntegrityError,
        match=r"8 of 8 listed images are missing: img/0\.png \(line 1\), img/1\.png \(line 2\), "
        r"img/2\.png \(line 3\) and 5 more; ",
    ):
        ListFileDataset(tmp_path, lst)


def test_list_counts_against_expected(image_root: Path) -> None:
    lst = image_root / "ImageNet_LT_train.txt"  # 3, 2, 1 images in classes 0, 1, 2
    ListFileDataset(image_root, lst, expected=ExpectedCounts(3, total=6))
    with pytest.raises(DataIntegrityError) as info:
        ListFileDataset(image_root, lst, expected=ExpectedCounts(3, per_class=3), split="test")
    msg = str(info.value)
    assert msg.startswith(
        f"{lst}: test split has 6 of 9 test images: class 1 has 2 of 3 test images, "
        "class 2 has 1 of 3 test images; the list file is truncated or not the standard"
    )
    none_in_3 = r"6 of 6 training images: no training images in 1 class \(class 3\)"
    with pytest.raises(DataIntegrityError, match=none_in_3):
        ListFileDataset(image_root, lst, num_classes=4, expected=ExpectedCounts(4, total=6))


def test_label_out_of_range_for_the_data_set(image_root: Path) -> None:
    lst = image_root / "labels.txt"
    lst.write_text("train/n001/n001_0.png 0\ntrain/n001/n001_1.png 1000\n")
    with pytest.raises(ListFileError, match=r"labels\.txt:2: label 1000 >= num_classes 1000"):
        build_dataset("imagenet_lt", image_root, train_list="labels.txt", expected={"train": None})
