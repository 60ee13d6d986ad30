"""Build script: CMake + ninja + pybind11 native modules (see docs/build.md).

Environment variables:

* ``FOCALSAM_NO_NATIVE=1``  pure-Python install (no compiler needed; impl ``cpp``/``cuda`` unavailable).
* ``FOCALSAM_NO_CUDA=1``    build only the CPU module even when nvcc is found.
* ``FOCALSAM_CUDA_ARCHS``   CMAKE_CUDA_ARCHITECTURES list, default ``80-real;86-real;89-real;90``
  (SASS for sm_80/86/89/90 plus compute_90 PTX).
* ``CUDA_HOME``/``CUDA_PATH`` where to look for ``bin/nvcc`` (else ``nvcc`` on PATH).
* ``FOCALSAM_BUILD_JOBS``   parallel compile jobs (default: all cores).
* ``CMAKE_ARGS``            extra arguments for the CMake configure step.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def find_tool(name: str) -> str | None:
    """``name`` next to this Python (the build environment's scripts) or on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else shutil.which(name)


def find_nvcc() -> str | None:
    """Path of nvcc from CUDA_HOME / CUDA_PATH / PATH, or None."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc")


class CMakeExtension(Extension):
    """A module built by the top-level CMakeLists.txt (no sources for setuptools to compile)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures and builds all CMake targets once, writing them where setuptools expects them
    (``build/lib...`` for wheels, the source tree for ``--inplace`` and editable installs)."""

    def build_extensions(self) -> None:
        if not self.extensions:
            return
        cmake = find_tool("cmake")
        if cmake is None:
            raise RuntimeError("cmake not found: `pip install cmake ninja` (or set FOCALSAM_NO_NATIVE=1)")
        out_dir = Path(self.get_ext_fullpath(self.extensions[0].name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        import pybind11

        args = [
            f"-DFOCALSAM_OUTPUT_DIR={out_dir}",
            f"-DFOCALSAM_EXT_SUFFIX={sysconfig.get_config_var('EXT_SUFFIX')}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={'Debug' if self.debug else 'Release'}",
        ]
        ninja = find_tool("ninja")
        if ninja is not None:
            args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
        nvcc = None if _flag("FOCALSAM_NO_CUDA") else find_nvcc()
        if nvcc is not None and any(e.name.endswith("_C_cuda") for e in self.extensions):
            args += ["-DFOCALSAM_WITH_CUDA=ON", f"-DCMAKE_CUDA_COMPILER={nvcc}"]
            archs = os.environ.get("FOCALSAM_CUDA_ARCHS")
            if archs:
                args.append(f"-DFOCALSAM_CUDA_ARCHS={archs}")
        else:
            args.append("-DFOCALSAM_WITH_CUDA=OFF")
        args += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        jobs = os.environ.get("FOCALSAM_BUILD_JOBS") or str(os.cpu_count() or 1)
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True)


def native_extensions() -> list[CMakeExtension]:
    """The modules to build, according to the environment (see the module docstring)."""
    if _flag("FOCALSAM_NO_NATIVE"):
        return []
    exts = [CMakeExtension("focalsam_fast._C_cpu")]
    if not _flag("FOCALSAM_NO_CUDA") and find_nvcc() is not None:
        exts.append(CMakeExtension("focalsam_fast._C_cuda"))
    return exts


setup(ext_modules=native_extensions(), cmdclass={"build_ext": CMakeBuild})
