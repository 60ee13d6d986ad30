"""The shared count check (``check_class_counts``) and how its error reaches the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from focalsam_fast.data import CIFAR_COUNTS, DataIntegrityError, ExpectedCounts, check_class_counts

FIX = "re-download it"


def _message(counts: list[int], expected: ExpectedCounts, **kwargs: object) -> str:
    with pytest.raises(DataIntegrityError) as info:
        check_class_counts("/data/x.tar.xz", "train", counts, expected, FIX, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("/data/x.tar.xz: ") and msg.endswith(f"; {FIX}")
    return msg


def test_cifar_sizes() -> None:
    """50,000 training and 10,000 test images: 5,000 / 1,000 per class (CIFAR-10), 500 / 100 (CIFAR-100)."""
    for num_classes, (train, test) in {10: (5000, 1000), 100: (500, 100)}.items():
        assert CIFAR_COUNTS[num_classes] == {
            "train": ExpectedCounts(num_classes, per_class=train),
            "test": ExpectedCounts(num_classes, per_class=test),
        }
        assert (train * num_classes, test * num_classes) == (50_000, 10_000)


def test_balanced_counts_pass_and_any_difference_fails(seed: int) -> None:
    rng = np.random.default_rng(seed)
    expected = CIFAR_COUNTS[10]["train"]
    check_class_counts("x", "train", [5000] * 10, expected, FIX)
    k, short = int(rng.integers(0, 10)), int(rng.integers(1, 5000))
    counts = [5000] * 10
    counts[k] -= short
    names = [f"n{i}" for i in range(10)]
    msg = _message(counts, expected, class_names=names)
    assert (
        f"train split has {50_000 - short:,} of 50,000 training images: "
        f"class {k} (n{k}) has {5000 - short:,} of 5,000 training images;" in msg
    )
    counts[k] = 5001
    msg = _message(counts, expected, class_names=names)
    assert f"class {k} (n{k}) has 5,001 of 5,000 training images" in msg


def test_many_bad_classes_name_three_and_count_the_rest() -> None:
    msg = _message([1, 2, 3, 4, 5, 6], ExpectedCounts(6, per_class=7), detail=lambda k: f"detail {k}")
    assert (
        "train split has 21 of 42 training images: class 0 has 1 of 7 training images (detail 0), "
        "class 1 has 2 of 7 training images (detail 1), class 2 has 3 of 7 training images (detail 2) "
        "and 3 more;" in msg
    )
    # Empty details add nothing.
    assert "class 0 has 1 of 7 training images, class 1" in _message(
        [1, 2, 3, 4, 5, 6], ExpectedCounts(6, per_class=7), detail=lambda k: ""
    )


def test_class_number_and_totals() -> None:
    assert "train split has 9 classes (a, b, c and 6 more), expected 10;" in _message(
        [5] * 9, ExpectedCounts(10, per_class=5), class_names=list("abcdefghi")
    )
    long_tailed = ExpectedCounts(4, total=10)  # total known, every class present
    check_class_counts("x", "train", [6, 2, 1, 1], long_tailed, FIX)
    assert "train split has 9 of 10 training images;" in _message([5, 2, 1, 1], long_tailed)
    assert (
        "train split has 10 of 10 training images: no training images in 2 classes (class 1, class 3);"
        in _message([8, 0, 2, 0], long_tailed)
    )
    check_class_counts("x", "train", [3, 1], ExpectedCounts(2), FIX)  # no sizes: every class present
    assert "has 3 of 3 training images: no training images in 1 class (class 1);" in _message(
        [3, 0], ExpectedCounts(2)
    )


def test_one_line_on_the_command_line(
    make_archive: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``focalsam train`` on a truncated archive: exit code 2 and one line naming the archive."""
    from focalsam_fast.cli.main import main

    path = make_archive()
    path.write_bytes(path.read_bytes()[:300])
    code = main(
        [
            "train",
            "--dataset",
            "cifar10_lt",
            "--data-root",
            str(path),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("focalsam: error: ")
    assert f"{path}: damaged: the xz stream stops before its end" in err


def test_expected_counts_are_validated() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ExpectedCounts(0, per_class=5)
    with pytest.raises(ValueError, match="must be positive"):
        ExpectedCounts(10, per_class=-1)
    with pytest.raises(ValueError, match="per_class or total, not both"):
        ExpectedCounts(10, per_class=5, total=50)
