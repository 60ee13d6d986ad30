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


@pytest.fixture
def error_line() -> Callable[..., str]:
    """``error_line(res)``: the one ``focalsam: error:`` line of a refused invocation (exit code 2,
    no traceback); with ``started=False`` (default) it must be all of stderr (refused before any
    training), with ``started=True`` it must be the last line after the run's log lines."""

    def check(res: CliResult, started: bool = False) -> str:
        assert res.code == 2, (res.code, res.out, res.err)
        assert "Traceback" not in res.err
        lines = [line for line in res.err.splitlines() if line.strip()]
        assert [line for line in lines if line.startswith("focalsam: error: ")] == lines[-1:], res.err
        assert started or len(lines) == 1, res.err
        return lines[-1]

    return check
