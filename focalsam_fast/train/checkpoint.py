"""Checkpoints: one container format with its own SHA-256 digest, RNG capture/restore,
compatibility checks.

A checkpoint file (format 2) is::

    FOCALSAM-CHECKPOINT 2\n
    sha256 <64 hex digits> size <16 digits>\n
    <payload: torch.save of the state dict, `size` bytes>

The digest covers the payload and is verified before anything is unpickled, so a flipped byte or
a truncated file is reported as corruption and never loaded.  Files are written with
:func:`~focalsam_fast.train.files.atomic_write` (temporary file + ``os.replace``).
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from .config import TrainConfig, validate_config
from .errors import CheckpointError
from .files import CHECKPOINT_NAME, atomic_write

FORMAT_VERSION = 2
MAGIC = b"FOCALSAM-CHECKPOINT "
_FIRST_LINE = MAGIC + str(FORMAT_VERSION).encode() + b"\n"
_CHUNK = 1 << 20
_DIGEST_LINE = re.compile(rb"sha256 ([0-9a-f]{64}) size ([0-9]{16})\n")  # what _digest_line writes
# Everything Trainer.state() writes; eval and --resume rely on these.
REQUIRED_KEYS = (
    "epoch",
    "global_step",
    "config",
    "model_name",
    "num_classes",
    "class_counts",
    "class_names",
    "model",
    "optimizer",
    "lr_scheduler",
    "rho_scheduler",
    "grad_scaler",
    "sampler_seed",
    "rng",
    "history",
)


def _digest_line(hexdigest: str, size: int) -> bytes:
    return f"sha256 {hexdigest} size {size:016d}\n".encode()


class _HashingWriter:
    """Forwards writes to ``fh`` and hashes what passes through (``torch.save`` writes sequentially)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        return self.fh.write(view)

    def flush(self) -> None:
        self.fh.flush()


class _Window(io.RawIOBase):
    """The byte range ``[start, start + size)`` of ``fh`` as a file of its own (for ``torch.load``)."""

    def __init__(self, fh: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self.fh, self.start, self.size = fh, start, size
        fh.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.fh.tell() - self.start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self.size}[whence]
        self.fh.seek(self.start + base + offset)
        return base + offset

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.tell())
        return self.fh.readinto(memoryview(buffer)[:n]) if n > 0 else 0


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` as a format-2 checkpoint, atomically, with the SHA-256 of its payload (hashed
    while it streams to disk: no second copy in memory)."""

    def write(fh: BinaryIO) -> None:
        fh.write(_FIRST_LINE)
        digest_at = fh.tell()
        fh.write(_digest_line("0" * 64, 0))
        payload = _HashingWriter(fh)
        torch.save(state, payload)
        end = fh.tell()
        fh.seek(digest_at)
        fh.write(_digest_line(payload.sha.hexdigest(), payload.size))
        fh.seek(end)

    atomic_write(path, write)


def _read_verified(fh: BinaryIO, path: Path) -> dict[str, Any]:
    """Check the header and the digest, then unpickle the payload."""
    first = fh.readline(64)
    if first.startswith(b"PK\x03\x04"):
        raise CheckpointError(
            f"checkpoint {path} was written by an older focalsam (format 1, without an integrity digest); "
            f"this version reads format {FORMAT_VERSION} only: use the version that wrote it, or train again"
        )
    if not first.startswith(MAGIC) or not first.endswith(b"\n"):
        raise CheckpointError(
            f"{path} is not a focalsam checkpoint (or its header is damaged): "
            f"pass a {CHECKPOINT_NAME} written by `focalsam train`"
        )
    version = first[len(MAGIC) : -1].decode(errors="replace")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"checkpoint {path} has format {version!r}; this focalsam reads format "
            f"{FORMAT_VERSION}: use the focalsam version that wrote it"
        )
    fields = _DIGEST_LINE.fullmatch(fh.readline(128))  # byte-exact: a flipped bit never parses
    if fields is None:
        raise CheckpointError(
            f"checkpoint {path} is corrupted (damaged digest header); it was not loaded: "
            "restore an intact copy or train again"
        )
    expected, size, start = fields[1].decode(), int(fields[2]), fh.tell()
    sha, seen = hashlib.sha256(), 0
    while chunk := fh.read(_CHUNK):
        sha.update(chunk)
        seen += len(chunk)
    if seen != size:
        raise CheckpointError(
            f"checkpoint {path} is corrupted or truncated ({seen} payload bytes, its "
            f"header says {size}); it was not loaded: restore an intact copy or train "
            "again"
        )
    if sha.hexdigest() != expected:
        raise CheckpointError(
            f"checkpoint {path} is corrupted (its SHA-256 does not match the digest "
            "written with it); it was not loaded: restore an intact copy or train again"
        )
    return torch.load(_Window(fh, start, size), map_location="cpu", weights_only=False)


def checkpoint_config(ckpt: dict[str, Any], path: str | Path) -> TrainConfig:
    """The run configuration saved in ``ckpt`` (validated); a foreign one raises :class:`CheckpointError`."""
    try:
        cfg = TrainConfig.from_dict(ckpt["config"])
        validate_config(cfg)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} holds a config this focalsam version cannot use "
            f"({' '.join(str(exc).split())}); use the version that wrote it"
        ) from exc
    return cfg


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.  A missing, unreadable,
    corrupted, older-format or config-less file raises :class:`CheckpointError` (one line)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        with path.open("rb") as fh:
            ckpt = _read_verified(fh, path)
    except CheckpointError:
        raise
    except Exception as exc:  # OSError, and unpickling errors of many types
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(
            f"checkpoint {path} holds no training config: it was not written by "
            "`focalsam train` of this version"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}: it was written by another "
            "focalsam version; use the version that wrote it"
        )
    checkpoint_config(ckpt, path)
    return ckpt


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy, torch (CPU) and every CUDA device."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_compatible(
    ckpt: dict[str, Any],
    path: str | Path,
    model: str,
    num_classes: int,
    class_counts: Sequence[int] | None = None,
) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's model, class count or training class
    counts differ from this run's (checked before any training)."""
    if ckpt["model_name"] != model:
        raise CheckpointError(
            f"checkpoint {path} holds model {ckpt['model_name']!r}, this run uses {model!r}"
        )
    if ckpt["num_classes"] != num_classes:
        raise CheckpointError(
            f"checkpoint {path} has {ckpt['num_classes']} classes, the data set has {num_classes}"
        )
    if class_counts is not None and list(ckpt["class_counts"]) != list(class_counts):
        raise CheckpointError(
            f"checkpoint {path} was trained on class counts {list(ckpt['class_counts'])}, this data "
            f"set has {list(class_counts)} (same --dataset/--imbalance-ratio needed)"
        )


# Settings a resumed run may change: where and how fast it runs, not what it computes.
RESUME_MAY_CHANGE = frozenset(
    {"device", "workers", "threads", "impl", "max_steps", "data_root", "clip_weights", "preset"}
)


def check_same_settings(ckpt: dict[str, Any], path: str | Path, config: dict[str, Any]) -> None:
    """A resumed run continues the saved one: any setting that changes the training trajectory
    (lr, epochs, rho, method, ...) must match, else :class:`CheckpointError` names the first one.
    The optimizer and schedulers restore their hyper-parameters from the checkpoint, so a changed
    value would otherwise be silently ignored."""
    saved = ckpt["config"]
    for key, value in config.items():
        if key not in RESUME_MAY_CHANGE and saved.get(key) != value:
            raise CheckpointError(
                f"checkpoint {path} was trained with {key}={saved.get(key)!r}, this run asks for "
                f"{value!r}; a resumed run keeps its settings (start a new run with another --out)"
            )
