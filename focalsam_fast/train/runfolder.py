"""One run owns its output folder: an OS lock, a check for a run already there, unique default names.

:meth:`RunFolder.claim` takes an exclusive ``fcntl.flock`` on ``<folder>/.focalsam.lock`` for the
lifetime of the run.  The kernel drops the lock when the process dies, however it dies, so a killed
run never leaves a stale lock behind: ``--resume`` just claims the folder again.  While holding the
lock the claim removes temporary files of interrupted saves and refuses a folder whose checkpoint
would be overwritten by a run that does not resume from it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from pathlib import Path
from types import TracebackType

from .checkpoint import CHECKPOINT_NAME
from .errors import RunFolderError
from .files import ensure_folder, output_error, remove_temp_files

LOCK_NAME = ".focalsam.lock"
DEFAULT_PARENT = Path("runs")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _is_open_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def held_run_message(folder: Path) -> str:
    """What to do with a folder that already holds a run's checkpoint."""
    return (
        f"{folder} already holds a run ({CHECKPOINT_NAME}); continue it with "
        f"`focalsam train --out {folder} --resume` or choose another --out"
    )


class RunFolder:
    """An output folder owned by this process until :meth:`release` (or the end of a ``with``)."""

    def __init__(self, path: Path, fd: int, created: bool, removed_temp: list[str]) -> None:
        self.path, self._fd, self.created, self.removed_temp = path, fd, created, removed_temp

    @classmethod
    def claim(cls, path: str | Path, resume_from: str | Path | None = None) -> RunFolder:
        """Create ``path`` if needed and lock it.  Raises :class:`RunFolderError` when another
        process holds the lock, or when the folder holds a checkpoint and the run does not resume
        from that very file; :class:`OutputError` when the folder cannot be created or written."""
        path = Path(path)
        created = ensure_folder(path)
        return cls._lock(path, created, resume_from)

    @classmethod
    def claim_new(cls, stem: str, parent: str | Path = DEFAULT_PARENT) -> RunFolder:
        """Create and lock a new folder ``<parent>/<stem>-<YYYYmmdd-HHMMSS>-<6 hex>``; the name is
        made with an exclusive ``os.mkdir``, so two runs started in the same second never share it."""
        parent = Path(parent)
        ensure_folder(parent)
        while True:
            path = parent / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise output_error(path, exc) from exc
            return cls._lock(path, True, None)

    @classmethod
    def _lock(cls, path: Path, created: bool, resume_from: str | Path | None) -> RunFolder:
        lock = path / LOCK_NAME
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise output_error(lock, exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunFolderError(
                    f"run folder {path} is in use by another focalsam process (pid {pid}); "
                    "use a different --out or wait"
                ) from None
            if _is_open_file(fd, lock):
                break
            os.close(fd)  # the lock file was removed (folder discarded) between open and flock
        folder = cls(path, fd, created, [])
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            folder.discard()
            raise output_error(lock, exc) from exc
        checkpoint = path / CHECKPOINT_NAME
        if checkpoint.exists() and (resume_from is None or not _same_file(Path(resume_from), checkpoint)):
            folder.release()
            raise RunFolderError(held_run_message(path))
        folder.removed_temp = remove_temp_files(path)
        return folder

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd >= 0

    def release(self) -> None:
        """Unlock (idempotent).  The lock file stays: removing it could let two processes lock two
        different files of the same name."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def discard(self) -> None:
        """Unlock, and remove the folder when this claim created it and it holds nothing but the
        lock file (a run that failed before writing anything leaves no empty folder behind)."""
        if self._fd < 0:
            return
        lock = self.path / LOCK_NAME
        if self.created and [p.name for p in self.path.iterdir()] == [LOCK_NAME]:
            lock.unlink(missing_ok=True)
            self.release()
            try:
                self.path.rmdir()
            except OSError:  # something appeared meanwhile: keep the folder
                pass
        else:
            self.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.release()
        else:
            self.discard()

    def __del__(self) -> None:
        self.release()
