"""The one error class of the analysis: bad input, reported by the CLI as one line (exit code 2)."""

from __future__ import annotations

from ..train.errors import SetupError


class AnalysisError(SetupError, ValueError):
    """An analysis cannot run: unknown class or group, empty group, bad setting; the message names
    the value and what is valid."""
