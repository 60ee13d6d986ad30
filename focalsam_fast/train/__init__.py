"""Training engine: configuration and presets, per-method optimizers, schedules, the epoch loop,
atomic checkpoints, metrics and plots."""

from .builders import SetupError
from .checkpoint import CheckpointError, atomic_save, load_checkpoint
from .config import METHODS, PRESETS, TrainConfig, resolve_config
from .engine import RunResult, Trainer
from .metrics import EvalResult, evaluate, group_table

__all__ = ["METHODS", "PRESETS", "CheckpointError", "EvalResult", "RunResult", "SetupError",
           "TrainConfig", "Trainer", "atomic_save", "evaluate", "group_table", "load_checkpoint",
           "resolve_config"]
