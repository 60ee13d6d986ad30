"""CIFAR-LT sources: JPEG tar archives (synthetic here; the real one is in test_data_cifar_archive)
and torchvision folders (offline error)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from focalsam_fast.data import (
    CIFAR_MEAN,
    CIFAR_STD,
    DataIntegrityError,
    build_cifar_lt,
    build_dataset,
    load_cifar_torchvision,
    read_jpeg_archive,
    select_long_tailed,
)


def _write_archive(
    path: Path, images: dict[str, np.ndarray], n_test: int, extra: bytes | None = None
) -> None:
    """PNG members (lossless) ``train|test/<class>/NNNN.png``; added in shuffled order on purpose."""
    members = []
    for cls, imgs in images.items():
        for i, img in enumerate(imgs):
            split, num = ("test", i) if i < n_test else ("train", i - n_test)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            members.append((f"{split}/{cls}/{num:04d}.png", buf.getvalue()))
    if extra is not None:
        members.append(("train/cat/9999.png", extra))
    order = np.random.default_rng(len(members)).permutation(len(members))
    with tarfile.open(path, "w:xz") as tar:
        for j in order:
            name, data = members[j]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def synthetic(tmp_path: Path, seed: int) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8) for c in ("dog", "cat", "ant")}
    path = tmp_path / "tiny-cifar.tar.xz"
    _write_archive(path, images, n_test=2)
    return path, images


def test_archive_reader_order_labels_and_pixels(synthetic: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, images = synthetic
    splits = read_jpeg_archive(path)
    train, test = splits["train"], splits["test"]
    assert train.class_names == ["ant", "cat", "dog"]
    np.testing.assert_array_equal(train.labels, np.repeat([0, 1, 2], 10))
    np.testing.assert_array_equal(test.labels, np.repeat([0, 1, 2], 2))
    for label, cls in enumerate(train.class_names):
        np.testing.assert_array_equal(train.images[train.labels == label], images[cls][2:])
        np.testing.assert_array_equal(test.images[test.labels == label], images[cls][:2])


def test_archive_cache_round_trip(synthetic: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, _ = synthetic
    cache = tmp_path / "cache"
    first = read_jpeg_archive(path, cache)
    assert len(list(cache.glob("*.npy"))) == 4
    second = read_jpeg_archive(path, cache)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split].images, second[split].images)
        np.testing.assert_array_equal(first[split].labels, second[split].labels)
        assert first[split].class_names == second[split].class_names


def test_archive_errors(tmp_path: Path, seed: int) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.tar\.xz not found"):
        read_jpeg_archive(tmp_path / "missing.tar.xz")
    rng = np.random.default_rng(seed)
    bad = tmp_path / "bad.tar.xz"
    _write_archive(bad, {"cat": rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)}, 1, extra=b"not an image")
    with pytest.raises(DataIntegrityError, match=r"are not readable images: train/cat/9999\.png;"):
        read_jpeg_archive(bad)


def test_build_cifar_lt_archive_too_small(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = [f"c{k}" for k in range(10)]
    images = {c: rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8) for c in names}
    path = tmp_path / "c10.tar.xz"
    _write_archive(path, images, n_test=10)
    # 50 training images per class are not CIFAR-10's 5,000: a clear error, not a short set.
    with pytest.raises(DataIntegrityError, match=r"class 0 \(c0\) has 50 of 5,000 training images \(missing"):
        build_cifar_lt(path, 10, 100)


def test_cifar_transforms_and_dataset(seed: int) -> None:
    from focalsam_fast.data import ArrayDataset, build_transform

    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    test_ds = ArrayDataset(imgs, np.arange(4), build_transform("cifar", train=False))
    x, y = test_ds[2]
    assert x.shape == (3, 32, 32) and y == 2
    expected = (
        torch.from_numpy(imgs[2]).permute(2, 0, 1).float() / 255 - torch.tensor(CIFAR_MEAN)[:, None, None]
    ) / (torch.tensor(CIFAR_STD)[:, None, None])
    torch.testing.assert_close(x, expected)
    train_x, _ = ArrayDataset(imgs, np.arange(4), build_transform("cifar", train=True))[0]
    assert train_x.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="valid: cifar, imagenet, inat2018, clip"):
        build_transform("mnist", train=True)


def test_torchvision_cifar_missing_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_cifar_torchvision(tmp_path, 100)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "cifar-100-python") in msg and "download=True" in msg
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        build_dataset("cifar10_lt", tmp_path)


def test_torchvision_branch_draws_the_reference_subset(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import focalsam_fast.data.cifar as cifar_module

    rng = np.random.default_rng(seed)
    train_targets = rng.permutation(np.repeat(np.arange(10), 5000))
    train_data = rng.integers(0, 256, (50000, 2, 2, 3), dtype=np.uint8)
    test_targets = rng.permutation(np.repeat(np.arange(10), 1000))

    class FakeCIFAR10:  # torchvision's attributes, tiny 2x2 images
        base_folder, filename, url = "cifar-10-batches-py", "cifar-10-python.tar.gz", "https://example"
        classes: ClassVar[list[str]] = [f"c{k}" for k in range(10)]

        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert root == str(tmp_path) and download is False
            self.data = train_data if train else train_data[:10000]
            self.targets = list(train_targets if train else test_targets)

    monkeypatch.setitem(cifar_module._TORCHVISION, 10, FakeCIFAR10)
    train, test, counts, names = build_cifar_lt(tmp_path, 10, imb_ratio=50, profile="step")
    assert counts == [5000] * 5 + [100] * 5 and names == FakeCIFAR10.classes
    idx = select_long_tailed(train_targets, counts)
    np.testing.assert_array_equal(train.images, train_data[idx])
    np.testing.assert_array_equal(train.targets, train_targets[idx])
    assert len(test) == 10000
