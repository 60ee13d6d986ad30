"""Checkpoints: atomic writes (temp file + ``os.replace``), RNG capture/restore, compatibility checks."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1
CHECKPOINT_NAME = "last.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run (missing, unreadable or mismatched)."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, flush it to disk, then
    ``os.replace`` it over ``path``: a failure or interruption leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically (same scheme as :func:`atomic_save`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy, torch (CPU) and every CUDA device."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by the trainer; a missing/foreign file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a focalsam training checkpoint (format {FORMAT_VERSION})")
    return ckpt


def check_compatible(ckpt: dict[str, Any], path: str | Path, model: str, num_classes: int,
                     class_counts: Sequence[int] | None = None) -> None:
    """Raise :class:`CheckpointError` when the checkpoint's model, class count or training class
    counts differ from this run's (checked before any training)."""
    if ckpt["model_name"] != model:
        raise CheckpointError(
            f"checkpoint {path} holds model {ckpt['model_name']!r}, this run uses {model!r}")
    if ckpt["num_classes"] != num_classes:
        raise CheckpointError(
            f"checkpoint {path} has {ckpt['num_classes']} classes, the data set has {num_classes}")
    if class_counts is not None and list(ckpt["class_counts"]) != list(class_counts):
        raise CheckpointError(
            f"checkpoint {path} was trained on class counts {list(ckpt['class_counts'])}, this data "
            f"set has {list(class_counts)} (same --dataset/--imbalance-ratio needed)")


# Settings a resumed run may change: where and how fast it runs, not what it computes.
RESUME_MAY_CHANGE = frozenset({"device", "workers", "threads", "impl", "max_steps", "data_root",
                               "clip_weights", "preset"})


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
                f"{value!r}; a resumed run keeps its settings (start a new run with another --out)")
