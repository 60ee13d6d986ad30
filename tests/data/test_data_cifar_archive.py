"""The real CIFAR-10 JPEG archive (``<repo>/../shared/data/cifar10-jpeg.tar.xz``; skipped when absent).

Decoding the 60,000 JPEGs takes ~15 s, so it happens once per module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from focalsam_fast.data import CIFAR_COUNTS, ImageArrays, build_dataset, read_jpeg_archive, select_long_tailed

ARCHIVE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.xz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

pytestmark = pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"{ARCHIVE} not present")


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
