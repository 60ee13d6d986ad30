"""The errors a run reports as one line (the CLI prints them and exits with code 2).

Every class derives from :class:`RunError`: the message names the bad value, file or folder and
says what to do.  Anything else escaping the training system is a bug and keeps its traceback.
"""

from __future__ import annotations


class RunError(Exception):
    """A run cannot start or continue for a reason its one-line message names."""


class SetupError(RunError):
    """A run cannot start (bad path, missing weights, unavailable device or kernel)."""


class CheckpointError(RunError, ValueError):
    """A checkpoint that cannot be used: missing, corrupted, from another version, or mismatched."""


class OutputError(RunError):
    """An output cannot be written (full disk, read-only or wrong ``--out``); nothing partial is left."""


class RunFolderError(RunError):
    """The output folder belongs to another run (in use by a live process, or holding a checkpoint)."""


class DivergedError(RunError, FloatingPointError):
    """The training loss became non-finite."""
