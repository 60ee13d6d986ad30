"""Benchmark fixtures: size (smoke when pytest-benchmark is disabled), device, pinned threads.

``pytest -q`` (pyproject adds ``--benchmark-disable``) runs every benchmark body once at the
``smoke`` size; real runs pass ``--benchmark-enable`` (see docs/benchmarks/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from benchmarks.common import bench_device, bench_size, environment


def _disabled(config: pytest.Config) -> bool:
    """pytest-benchmark's rule: ``--benchmark-disable`` unless ``--benchmark-enable`` overrides it."""
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Pin ``torch.set_num_threads`` for the benchmarks (``FOCALSAM_BENCH_THREADS``, default all
    cores; 1 in smoke runs, where OpenMP spinning on a busy CI machine costs 10x) and restore the
    previous value afterwards."""
    before = torch.get_num_threads()
    default = 1 if _disabled(request.config) else os.cpu_count() or 1
    threads = int(os.environ.get("FOCALSAM_BENCH_THREADS", default))
    torch.set_num_threads(threads)
    yield threads
    torch.set_num_threads(before)


@pytest.fixture
def size(benchmark: Any) -> str:
    """'smoke' under ``--benchmark-disable``, else ``FOCALSAM_BENCH_SIZE`` (default 'cpu')."""
    return bench_size(benchmark.disabled)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The benchmark device (GPU when present; ``FOCALSAM_BENCH_DEVICE`` overrides)."""
    dev = bench_device()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the reference training scripts; all cells alike
    return dev


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add device name, torch/triton/CUDA versions, commit and threads to the JSON's machine_info."""
    machine_info["focalsam"] = environment(bench_device())
