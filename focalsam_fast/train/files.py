"""Every file a run writes goes through :func:`atomic_write`: a temporary file in the same folder,
flushed to disk, then ``os.replace``-d over the target.  A failure or interruption leaves the
previous file intact and no temporary file; an ``OSError`` (full disk, read-only folder, ...)
becomes one :class:`OutputError` whose message says what to do."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

CHECKPOINT_NAME = "last.pt"  # a run's checkpoint in its output folder (here: importable without torch)
TMP_SUFFIX = ".tmp"  # temporary files are ".<target name>.<random>.tmp" next to the target
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_UMASK = os.umask(0o022)  # read the process umask (os.umask can only read it by setting it) ...
os.umask(_UMASK)  # ... and put it back; outputs get the usual 0o666 & ~umask, not mkstemp's 0o600


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    if exc.errno in DISK_FULL:
        return OutputError(
            f"disk full while writing {path} (no partial file was left): free space "
            "on that disk or choose an --out folder on another one"
        )
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}; choose a writable --out folder")


def _not_a_folder(folder: Path) -> OutputError:
    return OutputError(f"output folder {folder} is a file, not a folder; choose another --out")


def ensure_folder(folder: str | Path) -> bool:
    """Create ``folder`` (and its parents) unless it exists; ``True`` when it was created.  A path
    that is a file, or a folder that cannot be created, raises :class:`OutputError`."""
    folder = Path(folder)
    if folder.is_dir():
        return False
    if folder.exists():
        raise _not_a_folder(folder)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # created meanwhile by someone else
        if not folder.is_dir():
            raise _not_a_folder(folder) from None
        return False
    except OSError as exc:
        raise output_error(folder, exc) from exc
    return True


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path``, flush it to disk, then rename it over
    ``path``.  Any exception (including KeyboardInterrupt) removes the temporary file and leaves the
    previous ``path`` untouched; ``OSError`` is raised as :class:`OutputError`."""
    path = Path(path)
    ensure_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(path, exc) from exc
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    data = text.encode()
    atomic_write(path, lambda fh: fh.write(data))


def probe_writable(folder: str | Path) -> None:
    """Create ``folder`` if needed and check that a file can be written there (before any work whose
    result would go there); failures raise :class:`OutputError`."""
    folder = Path(folder)
    ensure_folder(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".probe.", suffix=TMP_SUFFIX, dir=folder)
    except OSError as exc:
        raise output_error(folder, exc) from exc
    os.close(fd)
    os.unlink(tmp)


def remove_temp_files(folder: str | Path) -> list[str]:
    """Delete the temporary files an interrupted :func:`atomic_write` left in ``folder`` (a process
    killed with SIGKILL cannot clean up); returns their names.  Call it only while owning the folder."""
    removed = []
    for tmp in sorted(Path(folder).glob(f".*{TMP_SUFFIX}")):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
    return removed
