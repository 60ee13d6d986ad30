"""Default CPU threads: the physical cores this process may use, never more than its affinity mask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from focalsam_fast.train import threads
from focalsam_fast.train.config import resolve_config
from focalsam_fast.train.engine import set_threads


def _cpuinfo(path: Path, cores: list[tuple[int, int]]) -> Path:
    """A /proc/cpuinfo with one block per logical CPU, given (physical id, core id) pairs."""
    blocks = [
        f"processor\t: {i}\nphysical id\t: {p}\ncore id\t\t: {c}\nmodel name\t: x"
        for i, (p, c) in enumerate(cores)
    ]
    path.write_text("\n\n".join(blocks) + "\n\n")
    return path


def test_train_threads_physical_cores_counted(tmp_path: Path) -> None:
    # 2 sockets x 2 cores x 2 hyper-threads = 8 logical CPUs, 4 physical cores
    smt = [(p, c) for p in (0, 1) for c in (0, 1) for _ in range(2)]
    assert threads.physical_cores(_cpuinfo(tmp_path / "a", smt)) == 4
    assert threads.physical_cores(tmp_path / "missing") is None
    (tmp_path / "b").write_text("processor\t: 0\n")  # no core ids (some VMs, other OSes)
    assert threads.physical_cores(tmp_path / "b") is None


@pytest.mark.parametrize(
    ("affinity", "cores", "expected"),
    [
        ({0}, 8, 1),  # pinned to one CPU on an 8-core machine
        ({0, 1, 2, 3}, 2, 2),  # 4 logical CPUs allowed, 2 physical cores (hyper-threads)
        ({0, 1, 2, 3}, 16, 4),  # a 4-CPU container on a 16-core host
        ({0, 1}, None, 2),  # physical cores unknown: the affinity mask
    ],
)
def test_train_threads_default_honours_affinity(
    monkeypatch: pytest.MonkeyPatch, affinity: set[int], cores: int | None, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity, raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: cores)
    assert threads.default_threads("resnet32", "cpu") == expected
    assert threads.default_threads("digits_cnn", "cpu") == 1
    assert threads.choose_threads(3, "resnet32", "cpu") == 3  # --threads wins


def test_train_threads_set_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    try:
        assert set_threads(resolve_config(None, {"model": "resnet32"}), torch.device("cpu")) == 1
        assert torch.get_num_threads() == 1
        assert set_threads(resolve_config(None, {"threads": 2}), torch.device("cpu")) == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_train_threads_real_machine_bounds() -> None:
    n = threads.default_threads("resnet32", "cpu")
    assert 1 <= n <= len(os.sched_getaffinity(0))
