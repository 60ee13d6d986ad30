"""Training engine: configuration and presets, per-method optimizers, schedules, the epoch loop,
checkpoints with an integrity digest, run-folder ownership, metrics and plots.

The names below are imported on first use (PEP 562), so that ``focalsam_fast.train.config`` (which
the command line's ``--help`` needs) loads without torch, torchvision or matplotlib.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "METHODS": ".config",
    "PRESETS": ".config",
    "TrainConfig": ".config",
    "resolve_config": ".config",
    "RunResult": ".engine",
    "Trainer": ".engine",
    "CheckpointError": ".errors",
    "OutputError": ".errors",
    "RunError": ".errors",
    "RunFolderError": ".errors",
    "SetupError": ".errors",
    "EvalResult": ".metrics",
    "evaluate": ".metrics",
    "group_table": ".metrics",
    "RunFolder": ".runfolder",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
