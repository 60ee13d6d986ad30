"""A damaged or incomplete CIFAR JPEG archive never yields a smaller data set: one-line errors."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from focalsam_fast.data import (
    DataIntegrityError,
    ExpectedCounts,
    build_dataset,
    imbalance_counts,
    read_jpeg_archive,
)
from focalsam_fast.data.cifar_jpeg import FIX

Expected = dict[str, ExpectedCounts]


def _error(path: Path, expected: Expected | None, **kwargs: object) -> str:
    with pytest.raises(DataIntegrityError) as info:
        read_jpeg_archive(path, expected=expected, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_intact_archive_matches_expected(
    make_archive: Callable[..., Path], tiny_members: dict[str, bytes], tiny_expected: Expected
) -> None:
    splits = read_jpeg_archive(make_archive(), expected=tiny_expected)
    assert splits["train"].class_names == ["ant", "bee", "cat"]
    np.testing.assert_array_equal(splits["train"].labels, np.repeat([0, 1, 2], 4))
    expected_img = np.asarray(Image.open(io.BytesIO(tiny_members["train/bee/0003.png"])).convert("RGB"))
    np.testing.assert_array_equal(splits["train"].images[7], expected_img)


def test_truncated_archive_is_reported_as_damage(
    make_archive: Callable[..., Path], tiny_expected: Expected
) -> None:
    path = make_archive()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    msg = _error(path, tiny_expected)
    assert "damaged: the xz stream stops before its end" in msg and msg.endswith(FIX)


def test_tar_cut_at_a_member_boundary_fails_the_count(
    make_archive: Callable[..., Path], tiny_expected: Expected
) -> None:
    """A plain tar cut exactly before a member reads as a shorter, valid archive: the counts catch it."""
    path = make_archive("tiny.tar")
    with tarfile.open(path) as tar:
        last = tar.getmember("train/cat/0003.png")
    path.write_bytes(path.read_bytes()[: last.offset])
    msg = _error(path, tiny_expected)
    assert "train split has 11 of 12 training images: class 2 (cat) has 3 of 4 training images" in msg
    assert "(missing 0003)" in msg


def test_missing_class_folder(make_archive: Callable[..., Path], tiny_expected: Expected) -> None:
    msg = _error(make_archive(drop=("train/bee/",)), tiny_expected)
    assert "train split has 8 of 12 training images: class 1 (bee) has 0 of 4 training images " in msg
    assert "(missing 0000, 0001, 0002 and 1 more)" in msg and msg.endswith(FIX)
    msg = _error(make_archive(drop=("train/bee/", "test/bee/")), tiny_expected)
    assert "train split has 2 classes (ant, cat), expected 3" in msg


def test_one_image_missing(make_archive: Callable[..., Path], tiny_expected: Expected) -> None:
    msg = _error(make_archive(drop=("test/cat/0001.png",)), tiny_expected)
    assert "test split has 5 of 6 test images: class 2 (cat) has 1 of 2 test images (missing 0001)" in msg


def test_extra_files(
    make_archive: Callable[..., Path], tiny_members: dict[str, bytes], tiny_expected: Expected
) -> None:
    png = tiny_members["train/ant/0000.png"]
    msg = _error(make_archive(extra={"train/ant/0004.png": png}), tiny_expected)
    assert "class 0 (ant) has 5 of 4 training images (unexpected 0004.png)" in msg
    msg = _error(make_archive(extra={"train/bee/0001.jpg": png}), tiny_expected)
    assert "class 1 (bee) has 5 of 4 training images (unexpected 0001.jpg, 0001.png)" in msg
    msg = _error(make_archive(extra={"train/dog/0000.png": png}), tiny_expected)
    assert "train split has 4 classes (ant, bee, cat and 1 more), expected 3" in msg
    # Files outside <split>/<class>/<image> are not data: ignored.
    ok = make_archive(extra={"README.txt": b"notes", "train/ant/Thumbs.db": b"x", "meta/x.png": png})
    assert len(read_jpeg_archive(ok, expected=tiny_expected)["train"].labels) == 12


def test_unreadable_or_misshapen_member(make_archive: Callable[..., Path], tiny_expected: Expected) -> None:
    bad = {"train/ant/0001.png": b"\x89PNG\r\n\x1a\n garbage", "test/cat/0000.png": b""}
    msg = _error(make_archive(extra=bad), tiny_expected)
    assert "2 member(s) are not readable images: test/cat/0000.png, train/ant/0001.png;" in msg
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 3, 3), dtype=np.uint8)).save(buf, format="PNG")
    msg = _error(make_archive(extra={"train/bee/0002.png": buf.getvalue()}), tiny_expected)
    assert "1 image(s) differ in size from the first (4x4): train/bee/0002.png (3x4);" in msg


def test_wrong_layout_names_what_was_found(
    make_archive: Callable[..., Path], tiny_members: dict[str, bytes], tiny_expected: Expected
) -> None:
    nested = {f"cifar/{k}": v for k, v in tiny_members.items()}
    msg = _error(make_archive(members=nested), tiny_expected)
    assert "no train or test images: expected members <split>/<class>/NNNN.jpg; files found: " in msg
    assert "cifar/test/ant/0000.png, cifar/test/ant/0001.png, cifar/test/bee/0000.png and 15 more" in msg


def test_without_expected_counts_classes_must_be_balanced(make_archive: Callable[..., Path]) -> None:
    assert len(read_jpeg_archive(make_archive())["test"].labels) == 6
    msg = _error(make_archive(drop=("train/cat/0002.png",)), None)
    assert "train split has 11 of 12 training images: class 2 (cat) has 3 of 4 training images" in msg
    assert "(missing 0002)" in msg


def test_cache_holds_only_checked_data(
    make_archive: Callable[..., Path], tiny_expected: Expected, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    short = make_archive("short.tar.xz", drop=("train/ant/0000.png",))
    _error(short, tiny_expected, cache_dir=cache)
    assert not cache.exists() or not list(cache.iterdir())

    good = make_archive()
    first = read_jpeg_archive(good, cache, tiny_expected)
    images = sorted(cache.glob("*-train-images.npy"))
    assert len(images) == 1
    # Cached arrays that lost rows (a copy from elsewhere, an old version): caught on load.
    np.save(images[0], first["train"].images[:-1])
    np.save(str(images[0]).replace("-images.npy", "-labels.npy"), first["train"].labels[:-1])
    msg = _error(good, tiny_expected, cache_dir=cache)
    assert f"{cache}: train split has 11 of 12 training images: class 2 (cat) has 3 of 4" in msg
    assert f"delete the cached arrays of {good} in {cache}" in msg
    # A truncated cache file.
    images[0].write_bytes(images[0].read_bytes()[:100])
    msg = _error(good, tiny_expected, cache_dir=cache)
    assert f"cached arrays of {good} are damaged" in msg and f"delete {images[0].name}" in msg


def test_build_dataset_checks_counts(
    make_archive: Callable[..., Path], tiny_members: dict[str, bytes], tiny_expected: Expected
) -> None:
    with pytest.raises(DataIntegrityError, match=r"train split has 3 classes \(ant, bee, cat\), expected 10"):
        build_dataset("cifar10_lt", make_archive())
    with pytest.raises(ValueError, match="expected counts for 3 classes; CIFAR-10 has 10"):
        build_dataset("cifar10_lt", make_archive(), expected=tiny_expected)
    png = tiny_members["train/ant/0000.png"]
    sizes = {"train": 20, "test": 3}
    members = {f"{s}/c{k}/{i:04d}.png": png for s, n in sizes.items() for k in range(10) for i in range(n)}
    path = make_archive("ten.tar.gz", members=members)
    with pytest.raises(DataIntegrityError, match=r"class 0 \(c0\) has 20 of 5,000 training images \(missing"):
        build_dataset("cifar10_lt", path)
    scaled = {s: ExpectedCounts(10, per_class=n) for s, n in sizes.items()}
    data = build_dataset("cifar10_lt", path, imb_ratio=10, expected=scaled)
    assert data.class_counts == imbalance_counts(20, 10, 10, "exp") and len(data.test) == 30
