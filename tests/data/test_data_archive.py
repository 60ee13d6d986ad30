"""Damaged tar archives (truncated, flipped bytes, damaged headers) are reported as damage."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from focalsam_fast.data import DataIntegrityError
from focalsam_fast.data.archive import iter_tar_files

FIX = "download it again"
COMPRESSED = ("tiny.tar.xz", "tiny.tar.gz", "tiny.tar.bz2")


def _read_all(path: Path) -> dict[str, bytes]:
    return dict(iter_tar_files(path, FIX))


def _one_line_error(path: Path) -> str:
    with pytest.raises(DataIntegrityError) as info:
        _read_all(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and msg.endswith(f"; {FIX}")
    return msg


@pytest.mark.parametrize("name", [*COMPRESSED, "tiny.tar"])
def test_intact_archive_gives_every_member(
    name: str, make_archive: Callable[..., Path], tiny_members: dict[str, bytes]
) -> None:
    assert _read_all(make_archive(name)) == tiny_members


@pytest.mark.parametrize("name", COMPRESSED)
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_truncated_compressed_stream(name: str, fraction: float, make_archive: Callable[..., Path]) -> None:
    path = make_archive(name)
    data = path.read_bytes()
    path.write_bytes(data[: max(7, int(len(data) * fraction))])
    msg = _one_line_error(path)
    kind = path.suffix[1:]
    assert f"damaged: the {kind} stream stops before its end (a truncated or corrupt file" in msg


@pytest.mark.parametrize("name", COMPRESSED)
def test_flipped_byte_in_compressed_stream(
    name: str, make_archive: Callable[..., Path], tiny_members: dict[str, bytes], seed: int
) -> None:
    """64 random positions (fresh each run): a flipped byte is reported as stream damage, or the
    data read is unchanged (gzip's mtime and file name, padding bits: no checksum covers them)."""
    path = make_archive(name)
    data = path.read_bytes()
    kind = path.suffix[1:]
    errors = 0
    for pos in np.random.default_rng(seed).permutation(len(data))[:64]:
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            assert _read_all(path) == tiny_members, pos
        except DataIntegrityError as exc:
            msg = str(exc)
            assert "\n" not in msg and msg.endswith(f"; {FIX}")
            stream_damage = f"damaged: the {kind} stream " in msg or f"start with the {kind} signature" in msg
            assert stream_damage, (pos, msg)
            errors += 1
    assert errors >= 48  # harmless positions are < 2% of these files


@pytest.mark.parametrize("name", COMPRESSED)
def test_damaged_signature(name: str, make_archive: Callable[..., Path]) -> None:
    path = make_archive(name)
    data = bytearray(path.read_bytes())
    data[1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert f"does not start with the {path.suffix[1:]} signature" in _one_line_error(path)


def test_truncated_plain_tar_inside_a_member(make_archive: Callable[..., Path]) -> None:
    path = make_archive("tiny.tar")
    with tarfile.open(path) as tar:
        third = tar.getmembers()[2]
    path.write_bytes(path.read_bytes()[: third.offset_data + 10])
    msg = _one_line_error(path)
    assert "damaged: the tar data stops before its end" in msg
    assert "after 2 files (last: test/ant/0001.png)" in msg


def test_corrupt_tar_header_does_not_end_the_archive_silently(
    make_archive: Callable[..., Path], seed: int
) -> None:
    """tarfile takes a header with a bad checksum for the end of the archive; the data after it is
    what shows the damage."""
    path = make_archive("tiny.tar")
    with tarfile.open(path) as tar:
        fifth = tar.getmembers()[4]
    data = bytearray(path.read_bytes())
    data[fifth.offset + int(np.random.default_rng(seed).integers(0, 512))] ^= 0xFF
    path.write_bytes(bytes(data))
    msg = _one_line_error(path)
    assert "a corrupt tar header ends the listing early, after 4 files (last: test/bee/0001.png)" in msg


def test_not_a_tar_archive(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "noise.tar"
    path.write_bytes(np.random.default_rng(seed).integers(1, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a readable tar archive" in _one_line_error(path)
    empty = tmp_path / "empty.tar.xz"
    empty.write_bytes(b"")
    assert "does not start with the xz signature" in _one_line_error(empty)
