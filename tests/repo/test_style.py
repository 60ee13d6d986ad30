"""Style is enforced, not hoped for: the README's test command runs the linter and the formatter
checks over the whole repository (ruff for Python, configured in pyproject.toml; clang-format for
csrc/, configured in .clang-format; both pinned in the test extra so that every machine formats
alike; .pre-commit-config.yaml runs the same tools)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = sorted(str(p) for p in (ROOT / "csrc").rglob("*") if p.suffix in {".h", ".cpp", ".cu", ".cuh"})


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "args",
    [["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]],
    ids=["ruff-check", "ruff-format"],
)
def test_python_is_ruff_clean(args: list[str]) -> None:
    done = _run([sys.executable, "-m", "ruff", *args])
    assert "No module named ruff" not in done.stderr, "ruff is missing: pip install -e '.[test]'"
    assert done.returncode == 0, f"ruff {' '.join(args)} failed (fix with `ruff {args[0]} .`):\n{done.stdout}"


def test_csrc_is_clang_formatted() -> None:
    tool = shutil.which("clang-format", path=str(Path(sys.executable).parent)) or shutil.which("clang-format")
    assert tool, "clang-format is missing: pip install -e '.[test]'"
    assert CSRC, "no C++/CUDA sources found under csrc/"
    done = _run([tool, "--dry-run", "--Werror", *CSRC])
    assert done.returncode == 0, f"clang-format -i csrc/... would change:\n{done.stderr[:4000]}"
