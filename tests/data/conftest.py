"""Small synthetic CIFAR-like tar archives (``<split>/<class>/NNNN.png``) for the integrity tests."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from focalsam_fast.data import ExpectedCounts

TINY_CLASSES = ("ant", "bee", "cat")
TINY_PER_CLASS = {"train": 4, "test": 2}
WRITE_MODES = {".xz": "w:xz", ".gz": "w:gz", ".bz2": "w:bz2", ".tar": "w"}


@pytest.fixture
def tiny_expected() -> dict[str, ExpectedCounts]:
    """The expected counts of the tiny archive: 3 classes, 4 training and 2 test images each."""
    return {split: ExpectedCounts(len(TINY_CLASSES), per_class=n) for split, n in TINY_PER_CLASS.items()}


@pytest.fixture
def tiny_members(seed: int) -> dict[str, bytes]:
    """Random 4x4 PNG images (lossless) under every ``<split>/<class>/NNNN.png`` of the tiny archive."""
    rng = np.random.default_rng(seed)
    members = {}
    for split, n in TINY_PER_CLASS.items():
        for cls in TINY_CLASSES:
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(buf, format="PNG")
                members[f"{split}/{cls}/{i:04d}.png"] = buf.getvalue()
    return members


def write_tar(path: Path, members: Mapping[str, bytes]) -> Path:
    """A tar archive of ``members`` sorted by name (as the real archive), compressed after the suffix."""
    with tarfile.open(path, WRITE_MODES[path.suffix]) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))
    return path


@pytest.fixture
def make_archive(tmp_path: Path, tiny_members: dict[str, bytes]) -> Callable[..., Path]:
    """``make(name, drop, extra, members)``: the tiny archive (or ``members``) without the members
    whose names start with one of ``drop`` and with the ``extra`` ones, written to ``tmp_path/name``
    (compression from the suffix)."""

    def make(
        name: str = "tiny.tar.xz",
        drop: tuple[str, ...] = (),
        extra: Mapping[str, bytes] | None = None,
        members: Mapping[str, bytes] | None = None,
    ) -> Path:
        source = tiny_members if members is None else members
        kept = {k: v for k, v in source.items() if not k.startswith(drop)}
        return write_tar(tmp_path / name, {**kept, **(extra or {})})

    return make
