"""What the build produced: module placement, no torch dependency, GPU code for sm_90."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(importlib.util.find_spec("focalsam_fast").origin).parent


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(f"focalsam_fast.{name}")
    if spec is None or spec.origin is None:
        pytest.skip(f"focalsam_fast.{name} is not built")
    return Path(spec.origin)


def _cuobjdump() -> str | None:
    """cuobjdump from $FOCALSAM_CUOBJDUMP, PATH or the CUDA toolkit."""
    candidates = [os.environ.get("FOCALSAM_CUOBJDUMP"), shutil.which("cuobjdump")]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            candidates.append(str(Path(os.environ[var]) / "bin" / "cuobjdump"))
    candidates.append("/usr/local/cuda/bin/cuobjdump")
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.parametrize("name", ["_C_cpu", "_C_cuda"])
def test_modules_sit_in_the_package(name: str) -> None:
    assert _module_path(name).parent == PACKAGE_DIR


@pytest.mark.parametrize("name", ["_C_cpu", "_C_cuda"])
def test_native_modules_load_without_torch(name: str) -> None:
    """The modules take raw pointers: importing one must not pull in torch."""
    path = _module_path(name)
    code = (
        "import importlib.machinery, importlib.util, sys\n"
        f"loader = importlib.machinery.ExtensionFileLoader({name!r}, {str(path)!r})\n"
        "spec = importlib.util.spec_from_loader(loader.name, loader)\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "loader.exec_module(mod)\n"
        "assert callable(mod.sq_norm) and callable(mod.sgd_step)\n"
        "assert 'torch' not in sys.modules, 'the native module imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cuda_module_contains_sm90_code() -> None:
    path = _module_path("_C_cuda")
    tool = _cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found (set FOCALSAM_CUOBJDUMP or install the CUDA toolkit)")
    elf = subprocess.run([tool, "--list-elf", str(path)], capture_output=True, text=True, check=True).stdout
    ptx = subprocess.run([tool, "--list-ptx", str(path)], capture_output=True, text=True, check=True).stdout
    archs = os.environ.get("FOCALSAM_CUDA_ARCHS")
    if archs is None or "90" in archs:
        assert "sm_90" in elf, elf
    assert ".ptx" in ptx, "no PTX embedded: newer GPUs could not JIT the kernels"
