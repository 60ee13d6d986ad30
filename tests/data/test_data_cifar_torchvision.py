"""torchvision's CIFAR folder: missing, damaged or short batch files fail with one-line errors.

The folder is a small fake in torchvision's pickle format; a subclass of torchvision's ``CIFAR10``
carries the fake files' md5 sums (``make``) so that torchvision itself reads them.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from torchvision.datasets import CIFAR10

import focalsam_fast.data.cifar as cifar_module
from focalsam_fast.data import DataIntegrityError, ExpectedCounts, load_cifar_torchvision

NAMES = [f"c{k}" for k in range(10)]
SCALED = {"train": ExpectedCounts(10, per_class=5), "test": ExpectedCounts(10, per_class=3)}
FOLDER = CIFAR10.base_folder


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _batch(rng: np.random.Generator, labels: list[int], row_bytes: int = 3072) -> dict:
    return {"data": rng.integers(0, 256, (len(labels), row_bytes), dtype=np.uint8), "labels": labels}


@pytest.fixture
def fake_root(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``make(batches=None)`` writes the fake folder (5 training batches of one image per class, a
    test batch of 3 per class; ``batches`` replaces some by name), registers a CIFAR-10 class whose
    md5 sums are those of the files written, and returns the root."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / FOLDER

    def make(batches: dict[str, dict | bytes] | None = None) -> Path:
        files: dict[str, dict | bytes] = {
            f"data_batch_{i}": _batch(rng, list(range(10))) for i in range(1, 6)
        }
        files["test_batch"] = _batch(rng, [k for k in range(10) for _ in range(3)])
        files["batches.meta"] = {"label_names": NAMES}
        files.update(batches or {})
        folder.mkdir(exist_ok=True)
        for name, content in files.items():
            raw = content if isinstance(content, bytes) else pickle.dumps(content)
            (folder / name).write_bytes(raw)
        md5 = {name: _md5(folder / name) for name in files}

        class FakeCIFAR10(CIFAR10):
            train_list: ClassVar = [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)]
            test_list: ClassVar = [["test_batch", md5["test_batch"]]]
            meta: ClassVar = {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]}

        monkeypatch.setitem(cifar_module._TORCHVISION, 10, FakeCIFAR10)
        return tmp_path

    return make


def _error(root: Path) -> str:
    with pytest.raises(DataIntegrityError) as info:
        load_cifar_torchvision(root, 10, expected=SCALED)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{root / FOLDER}: ")
    assert msg.endswith(
        f"extract cifar-10-python.tar.gz ({CIFAR10.url}) into {root}, "
        "or pass download=True where a network is up"
    )
    return msg


def test_intact_fake_folder_loads(fake_root: Callable[..., Path]) -> None:
    root = fake_root()
    splits = load_cifar_torchvision(root, 10, expected=SCALED)
    batch = pickle.loads((root / FOLDER / "data_batch_2").read_bytes())
    np.testing.assert_array_equal(
        splits["train"].images[10:20], batch["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(np.bincount(splits["test"].labels), [3] * 10)
    assert splits["train"].class_names == NAMES


def test_batch_with_too_few_rows(fake_root: Callable[..., Path], seed: int) -> None:
    short = _batch(np.random.default_rng(seed), [k for k in range(10) if k != 4])
    msg = _error(fake_root({"data_batch_3": short}))
    assert "train split has 49 of 50 training images: class 4 (c4) has 4 of 5 training images;" in msg


def test_missing_and_damaged_batch_files(fake_root: Callable[..., Path]) -> None:
    root = fake_root()
    (root / FOLDER / "data_batch_3").unlink()
    damaged = bytearray((root / FOLDER / "test_batch").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (root / FOLDER / "test_batch").write_bytes(bytes(damaged))
    assert f"{root / FOLDER}: data_batch_3 is missing, test_batch fails its md5 check;" in _error(root)


def test_unpicklable_or_misshapen_batch(fake_root: Callable[..., Path], seed: int) -> None:
    damage = "a batch file cannot be unpickled or has the wrong shape"
    wide = _batch(np.random.default_rng(seed), list(range(10)), row_bytes=3000)
    assert damage in _error(fake_root({"data_batch_1": wide}))
    cut = pickle.dumps(_batch(np.random.default_rng(seed), list(range(10))))[:-40]
    assert damage in _error(fake_root({"data_batch_5": cut}))


def test_files_that_are_not_the_release(
    fake_root: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchvision's own md5 sums: fake files all fail, the message names the first three."""
    root = fake_root()
    monkeypatch.setitem(cifar_module._TORCHVISION, 10, CIFAR10)
    msg = _error(root)
    assert "data_batch_1 fails its md5 check, data_batch_2 fails its md5 check, data_batch_3 fails" in msg
    assert "and 4 more;" in msg
