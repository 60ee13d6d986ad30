"""Reading the files of a (compressed) tar archive so that damage is reported as damage.

A truncated or corrupt compressed stream raises :class:`DataIntegrityError` saying so (with how
far reading got), instead of surfacing as a missing member, a layout problem or a silently shorter
archive: the whole compressed stream is read to its end so that its checksum is verified, and data
after the tar listing's end (a damaged member header, which :mod:`tarfile` takes for the end) is an
error too.
"""

from __future__ import annotations

import lzma
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from focalsam_fast.data.integrity import integrity_error

SIGNATURES = ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b", "gz"), (b"BZh", "bz2"))
SUFFIXES = {".xz": "xz", ".txz": "xz", ".gz": "gz", ".tgz": "gz", ".bz2": "bz2", ".tbz2": "bz2"}
# What tarfile, then the decompressors, raise on damaged data (bz2 and gzip raise OSError subclasses).
STREAM_ERRORS = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError)
CHUNK = 1 << 20


def compression(archive: Path) -> str:
    """``'xz'``, ``'gz'``, ``'bz2'`` from the file's first bytes, or ``''`` (no known signature)."""
    with archive.open("rb") as fh:
        head = fh.read(6)
    return next((kind for signature, kind in SIGNATURES if head.startswith(signature)), "")


def _damage(exc: BaseException, kind: str, count: int) -> str:
    # tarfile re-raises a decompressor's error met while opening as ReadError("not a ... file").
    inner = exc.__cause__ or exc.__context__
    if isinstance(exc, tarfile.ReadError) and isinstance(inner, STREAM_ERRORS[1:]):
        exc = inner
    stream = f"{kind} stream" if kind else "tar data"
    if isinstance(exc, EOFError) or "unexpected end" in str(exc):
        return f"damaged: the {stream} stops before its end (a truncated or corrupt file: {exc})"
    if isinstance(exc, tarfile.ReadError) and not kind and count == 0:
        return f"not a readable tar archive ({exc})"
    return f"damaged: the {stream} is corrupt ({type(exc).__name__}: {exc})"


def _where(count: int, last: str | None) -> str:
    return f"after {count:,} files (last: {last})" if last is not None else "before its first file"


def iter_tar_files(archive: Path, fix: str) -> Iterator[tuple[str, bytes]]:
    """``(member name, contents)`` of every regular file in ``archive``, in archive order.

    After the last member the rest of the stream is read (its checksum verified; only the tar
    end-of-archive zeros may follow).  Damage anywhere raises :class:`DataIntegrityError` naming
    the archive, the kind of damage and the last member read, followed by ``fix``.
    """
    kind = compression(archive)
    claimed = SUFFIXES.get(archive.suffix.lower(), kind)
    if claimed != kind:
        raise integrity_error(
            archive, f"does not start with the {claimed} signature (its first bytes are damaged)", fix
        )
    count, last, trailing = 0, None, False
    try:
        with tarfile.open(archive, f"r:{kind}") as tar:
            for member in tar:
                if member.isfile():
                    data = tar.extractfile(member).read()
                    count, last = count + 1, member.name
                    yield member.name, data
            while not trailing and (chunk := tar.fileobj.read(CHUNK)):
                trailing = bool(chunk.strip(b"\0"))
    except STREAM_ERRORS as exc:
        raise integrity_error(archive, f"{_damage(exc, kind, count)} {_where(count, last)}", fix) from exc
    if trailing:
        raise integrity_error(
            archive, f"damaged: a corrupt tar header ends the listing early, {_where(count, last)}", fix
        )
