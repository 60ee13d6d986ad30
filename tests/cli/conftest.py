"""Helpers for the CLI tests: run ``focalsam`` in-process and capture its output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from focalsam_fast.cli.main import main


@dataclass
class CliResult:
    """Exit code and captured streams of one ``focalsam`` invocation."""

    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``run_cli('train', '--epochs', '1', ...)`` -> :class:`CliResult`."""

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
