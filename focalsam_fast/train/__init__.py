"""Training engine: configuration and presets, per-method optimizers, schedules, the epoch loop,
checkpoints with an integrity digest, run-folder ownership, metrics and plots."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import METHODS, PRESETS, TrainConfig, resolve_config
from .engine import RunResult, Trainer
from .errors import CheckpointError, OutputError, RunError, RunFolderError, SetupError
from .metrics import EvalResult, evaluate, group_table
from .runfolder import RunFolder

__all__ = ["METHODS", "PRESETS", "CheckpointError", "EvalResult", "OutputError", "RunError", "RunFolder",
           "RunFolderError", "RunResult", "SetupError", "TrainConfig", "Trainer", "evaluate", "group_table",
           "load_checkpoint", "resolve_config", "save_checkpoint"]
