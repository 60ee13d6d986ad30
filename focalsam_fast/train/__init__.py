"""Training engine: configuration and presets, per-method optimizers, schedules, the epoch loop,
checkpoints with an integrity digest, run-folder ownership, metrics and plots.

The names below are imported on first use (PEP 562), so that ``focalsam_fast.train.config`` (which
the command line's ``--help`` needs) loads without torch, torchvision or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "METHODS": "config", "PRESETS": "config", "TrainConfig": "config", "resolve_config": "config",
    "RunResult": "engine", "Trainer": "engine",
    "CheckpointError": "errors", "OutputError": "errors", "RunError": "errors", "RunFolderError": "errors",
    "SetupError": "errors",
    "EvalResult": "metrics", "evaluate": "metrics", "group_table": "metrics",
    "RunFolder": "runfolder",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
