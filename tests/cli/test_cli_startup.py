"""``focalsam --help`` and argument errors import no torch, data, models or plotting: each
sub-command imports what it needs when it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = (
    "torch",
    "torchvision",
    "numpy",
    "matplotlib",
    "sklearn",
    "tqdm",
    "open_clip",
    "PIL",
    "triton",
    "focalsam_fast.data",
    "focalsam_fast.models",
    "focalsam_fast.kernels",
    "focalsam_fast.optim",
    "focalsam_fast.train.engine",
    "focalsam_fast.cli.train_cmd",
    "focalsam_fast.cli.eval_cmd",
)
PROBE = """
import json, sys, time
t0 = time.perf_counter()
import focalsam_fast
t1 = time.perf_counter()
before = set(sys.modules)
from focalsam_fast.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
t2 = time.perf_counter()
print(json.dumps({"code": code, "package_s": t1 - t0, "cli_s": t2 - t1,
                  "imported": sorted(set(sys.modules) - before)}), file=sys.stderr)
"""


def _probe(*argv: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["eval", "--help"],
        ["train", "--epochs", "x"],
        ["nonsense"],
        ["presets"],
    ],
)
def test_cli_startup_imports_nothing_heavy(argv: list[str]) -> None:
    res = _probe(*argv)
    assert res["code"] in (0, 2)
    heavy = [m for m in res["imported"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], heavy
    # The command line's own cost on top of `import focalsam_fast` (measured ~0.03 s; generous bound
    # for a loaded machine).
    assert res["cli_s"] < 1.0, res
    print(
        f"focalsam {' '.join(argv)}: import focalsam_fast {res['package_s']:.2f} s, cli {res['cli_s']:.3f} s"
    )
