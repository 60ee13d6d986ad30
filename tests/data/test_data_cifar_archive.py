"""The real CIFAR-10 JPEG archive (``<repo>/../shared/data/cifar10-jpeg.tar.xz``; skipped when absent).

Decoding the 60,000 JPEGs takes ~15 s, so it happens once per module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from focalsam_fast.data import (
    CIFAR_COUNTS,
    DataIntegrityError,
    ImageArrays,
    build_dataset,
    read_jpeg_archive,
    select_long_tailed,
)
from focalsam_fast.data.cifar_jpeg import check_splits

ARCHIVE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.xz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

pytestmark = pytest.mark.skipif(
    not ARCHIVE.is_file(),
    reason=f"CIFAR-10 JPEG archive not found at {ARCHIVE}: it is expected in the shared data folder next to "
    "the repository (../shared/data/cifar10-jpeg.tar.xz)",
)


@pytest.fixture(scope="module")
def cifar10() -> dict[str, ImageArrays]:
    return read_jpeg_archive(ARCHIVE, expected=CIFAR_COUNTS[10])


def test_archive_contents(cifar10: dict[str, ImageArrays]) -> None:
    train, test = cifar10["train"], cifar10["test"]
    assert train.images.shape == (50000, 32, 32, 3) and test.images.shape == (10000, 32, 32, 3)
    assert train.images.dtype == np.uint8
    assert train.class_names == CLASSES
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(10), 5000))
    np.testing.assert_array_equal(test.labels, np.repeat(np.arange(10), 1000))
    means = train.images.reshape(-1, 3).mean(axis=0) / 255
    np.testing.assert_allclose(means, (0.4913, 0.4821, 0.4465), atol=5e-4)  # README: JPEG-lossy means


def test_cifar10_lt_from_archive(cifar10: dict[str, ImageArrays], monkeypatch: pytest.MonkeyPatch) -> None:
    import focalsam_fast.data.cifar as cifar_module

    monkeypatch.setattr(cifar_module, "read_jpeg_archive", lambda path, cache_dir, expected: cifar10)
    data = build_dataset("cifar10_lt", ARCHIVE, imb_ratio=100)
    assert data.class_counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert data.class_names == CLASSES
    assert data.groups == {"head": [0, 1, 2, 3], "medium": [4, 5, 6], "tail": [7, 8, 9]}
    idx = select_long_tailed(cifar10["train"].labels, data.class_counts)
    np.testing.assert_array_equal(data.train.images, cifar10["train"].images[idx])
    np.testing.assert_array_equal(np.bincount(data.train.targets), data.class_counts)
    assert len(data.test) == 10000
    x, y = data.train[len(data.train) - 1]
    assert x.shape == (3, 32, 32) and y == 9


def test_real_counts_are_checked(cifar10: dict[str, ImageArrays], seed: int) -> None:
    """The decoded archive passes CIFAR-10's 5,000 / 1,000 per class; losing images of one class fails."""
    check_splits(ARCHIVE, cifar10, CIFAR_COUNTS[10], "re-download it")
    rng = np.random.default_rng(seed)
    k, lost = int(rng.integers(0, 10)), int(rng.integers(1, 5000))
    train = cifar10["train"]
    keep = np.ones(len(train.labels), dtype=bool)
    keep[np.flatnonzero(train.labels == k)[:lost]] = False
    short = dict(cifar10, train=ImageArrays(train.images[keep], train.labels[keep], train.class_names))
    with pytest.raises(DataIntegrityError) as info:
        check_splits(ARCHIVE, short, CIFAR_COUNTS[10], "re-download it")
    assert str(info.value) == (
        f"{ARCHIVE}: train split has {50_000 - lost:,} of 50,000 training images: class {k} ({CLASSES[k]}) "
        f"has {5000 - lost:,} of 5,000 training images; re-download it"
    )


def test_truncated_copy_of_the_real_archive(tmp_path: Path) -> None:
    """The first 2 % of the archive (copied to tmp_path): reported as a damaged stream, not as a short set."""
    cut = tmp_path / ARCHIVE.name
    cut.write_bytes(ARCHIVE.read_bytes()[: ARCHIVE.stat().st_size // 50])
    damaged = r"damaged: the xz stream stops before its end .* after [\d,]+ files \(last: train/airplane/"
    with pytest.raises(DataIntegrityError, match=damaged):
        build_dataset("cifar10_lt", cut)
