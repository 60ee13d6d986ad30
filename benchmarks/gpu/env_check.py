"""Stage 1a of gpu_check.sh: the machine can build and run everything (before the build).

Fails (exit 1) unless: torch sees a CUDA GPU; ``TRITON_INTERPRET`` is unset (Triton compiles for the
GPU instead of interpreting on the CPU); ``FOCALSAM_NO_CUDA`` / ``FOCALSAM_NO_NATIVE`` are unset;
nvcc is where setup.py looks (``CUDA_HOME``, ``CUDA_PATH``, ``PATH``); ``Python.h`` exists for this
Python; cmake, pybind11 and setuptools >= 64 (the ``--no-build-isolation`` editable build), pytest
and triton are importable / found.  Records the GPU, versions and optional packages
(pytest-benchmark, torchvision, open_clip: the benchmarks need them; wheel: older setuptools) in
the report.

``python -m benchmarks.gpu.env_check --out OUT/env.json``
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch

from benchmarks.gpu._common import Report, parse_args, require_cuda

OPTIONAL = ("pytest_benchmark", "torchvision", "numpy", "open_clip", "wheel")


def find_nvcc() -> str | None:
    """nvcc as setup.py finds it: ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``, then ``PATH``."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc")


def peak_bandwidth_gbs(props: object) -> float | None:
    """Nominal DRAM bandwidth, 2 transfers per clock x bus width (what the optimizer-side GB/s of
    the benchmarks is compared with); None when torch does not report the memory clock."""
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    return round(2 * clock_khz * 1e3 * bus_bits / 8 / 1e9, 1) if clock_khz and bus_bits else None


def _version(module: str) -> str:
    mod = importlib.import_module(module)
    return str(getattr(mod, "__version__", "unknown version"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    require_cuda("benchmarks/gpu/env_check.py")
    report = Report("env_check")

    def gpu() -> str:
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        peak = peak_bandwidth_gbs(props)
        report.info.update(
            {
                "peak_memory_bandwidth_gbs": peak,
                "gpu": props.name,
                "capability": f"{props.major}.{props.minor}",
                "gpu_memory_gib": round(total / 2**30, 1),
                "gpu_free_gib": round(free / 2**30, 1),
                "multiprocessors": props.multi_processor_count,
                "torch": torch.__version__,
                "torch_cuda": str(torch.version.cuda),
                "python": sys.version.split()[0],
                "python_executable": sys.executable,
            }
        )
        bandwidth = f", {peak:.0f} GB/s peak memory bandwidth" if peak else ""
        return (
            f"{props.name}, sm_{props.major}{props.minor}, {total / 2**30:.0f} GiB{bandwidth}, "
            f"torch {torch.__version__}"
        )

    def triton_mode() -> str:
        value = os.environ.get("TRITON_INTERPRET")
        if value is not None:
            raise RuntimeError(
                f"TRITON_INTERPRET={value!r} is set: Triton would run in its CPU interpreter; unset it"
            )
        return f"triton {_version('triton')}, compiled mode"

    def build_switches() -> str:
        bad = {k: os.environ[k] for k in ("FOCALSAM_NO_CUDA", "FOCALSAM_NO_NATIVE") if k in os.environ}
        if bad:
            raise RuntimeError(f"{bad} set: the CUDA module would not be built; unset them")
        return "FOCALSAM_NO_CUDA / FOCALSAM_NO_NATIVE unset"

    def nvcc() -> str:
        path = find_nvcc()
        if path is None:
            raise RuntimeError(
                "nvcc not found in $CUDA_HOME/bin, $CUDA_PATH/bin or PATH "
                f"(PATH={os.environ.get('PATH', '')})"
            )
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        release = [line for line in out.splitlines() if "release" in line]
        report.info["nvcc"] = path
        return f"{path}: {release[0].strip() if release else out.strip()}"

    def python_h() -> str:
        header = Path(sysconfig.get_paths()["include"]) / "Python.h"
        if not header.is_file():
            raise RuntimeError(f"{header} missing: install this Python's development headers")
        return str(header)

    def build_tools() -> str:
        found = {m: _version(m) for m in ("pybind11", "setuptools")}
        if int(found["setuptools"].split(".")[0]) < 64:
            raise RuntimeError(
                f"setuptools {found['setuptools']} cannot make editable installs of this "
                "project (PEP 660 needs >= 64)"
            )
        cmake = Path(sys.executable).parent / "cmake"
        cmake_path = str(cmake) if cmake.is_file() else shutil.which("cmake")
        if cmake_path is None:
            raise RuntimeError("cmake not found next to this Python or on PATH")
        ninja = Path(sys.executable).parent / "ninja"
        found["cmake"] = cmake_path
        ninja_path = str(ninja) if ninja.is_file() else shutil.which("ninja")
        found["ninja"] = ninja_path or "not found (make is used)"
        return ", ".join(f"{k} {v}" for k, v in found.items())

    def test_tools() -> str:
        return f"pytest {_version('pytest')}"

    for name, fn in (
        ("gpu", gpu),
        ("triton compiled", triton_mode),
        ("build switches", build_switches),
        ("nvcc", nvcc),
        ("Python.h", python_h),
        ("build tools", build_tools),
        ("pytest", test_tools),
    ):
        report.check(name, fn)
    optional = {m: importlib.util.find_spec(m) is not None for m in OPTIONAL}
    report.info["optional_packages"] = optional
    missing = [m for m, ok in optional.items() if not ok]
    print(
        "optional packages: "
        + (
            f"missing {', '.join(missing)} (benchmark stages that need them fail or skip, see their logs)"
            if missing
            else "all present"
        )
    )
    return report.finish(args.out)


if __name__ == "__main__":
    sys.exit(main())
