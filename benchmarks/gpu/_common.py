"""Shared parts of the GPU scripts: the CUDA guard, the impls under test, result collection.

Every script records named checks in a :class:`Report`; a check that raises is recorded as failed
with its exception (the later checks still run), and the script exits 1 when any check failed.
The report goes to ``--out FILE.json`` for ``gpu_check.sh`` to keep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

EXIT_NO_GPU = 2
REQUIRED_CUDA_IMPLS = ("cuda", "triton")


def require_cuda(script: str) -> None:
    """Exit with code :data:`EXIT_NO_GPU` and a one-line message unless torch sees a CUDA GPU."""
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        extra = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        print(
            f"{script}: needs a CUDA GPU, but torch.cuda.is_available() is False (torch "
            f"{torch.__version__}, CUDA build {torch.version.cuda}{extra}). Run it on a GPU machine, "
            "through benchmarks/gpu_check.sh.",
            file=sys.stderr,
        )
        sys.exit(EXIT_NO_GPU)


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """``--out FILE.json`` (where the report goes; default: none)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    return parser.parse_args(argv)


def fused_impls(device: torch.device, with_focal_loss: bool = False) -> list[str]:
    """Implementations other than ``reference`` available on ``device`` (with ``focal_loss`` when
    ``with_focal_loss``)."""
    from focalsam_fast import kernels

    names = [n for n in kernels.available_impls(device) if n != "reference"]
    if with_focal_loss:
        names = [n for n in names if hasattr(kernels.get_ops(n, device), "focal_loss")]
    return names


class Report:
    """Named pass/fail checks of one script, printed as they finish and saved as JSON."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.checks: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}

    def check(self, name: str, fn: Callable[[], str | None]) -> bool:
        """Run ``fn`` (returns an optional detail string; raises on failure) as check ``name``."""
        t0 = time.perf_counter()
        try:
            detail = fn() or ""
            ok = True
        except Exception as exc:  # recorded: one failing check must not hide the others
            ok = False
            detail = f"{type(exc).__name__}: {exc}".strip()
            traceback.print_exc()
        seconds = round(time.perf_counter() - t0, 3)
        self.checks.append({"name": name, "ok": ok, "detail": detail, "seconds": seconds})
        first_line = detail.splitlines()[0] if detail else ""
        print(
            f"[{'ok' if ok else 'FAIL'}] {name} ({seconds:.2f} s){': ' + first_line if first_line else ''}",
            flush=True,
        )
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def finish(self, out: Path | None) -> int:
        """Write the report (when ``out``), print the verdict; the process exit code."""
        failed = [c["name"] for c in self.checks if not c["ok"]]
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(
                json.dumps(
                    {"script": self.script, "ok": self.ok, "info": self.info, "checks": self.checks}, indent=2
                )
            )
        if not self.checks:
            print(f"{self.script}: FAILED: no check ran")
        elif failed:
            print(f"{self.script}: FAILED {len(failed)} of {len(self.checks)} checks: {', '.join(failed)}")
        else:
            print(f"{self.script}: all {len(self.checks)} checks passed")
        return 0 if self.ok else 1
