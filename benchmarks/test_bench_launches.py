"""Launch-count benchmark: dispatched ATen ops per training step, reference vs fused.

ResNet-32 on CIFAR-10-LT at batch 64 (the kernels issue's setting).  Every op that reaches a
``TorchDispatchMode`` is counted (forward, both/all backward passes, optimizer side; a fused
``focalsam::`` custom op counts as one).  The count does not depend on the image size, so the
smoke run uses 8x8 images to stay fast; the batch stays 64 because CC-SAM's per-class work
depends on the classes present.  Both paths run in NCHW (the count is about the optimizer
side).  Target (kernels issue): fused Focal-SAM <= 0.7x the reference SAM step's count.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.common import METHODS, VARIANTS, Shape, environment, make_cell

KEY = "resnet32-cifar10lt"


ALLOCATIONS = (
    "aten.empty",
    "aten.empty_like",
    "aten.empty_strided",
    "aten.new_empty",
    "aten.new_empty_strided",
)


class OpCounter(TorchDispatchMode):
    """Counts dispatched ATen (and custom) ops by name, and separately the ones that may run a
    kernel: not views/aliases (``detach``, ``t``, ``slice`` ...) and not bare allocations."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.compute_ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = str(func.overloadpacket)
        self.ops[name] += 1
        if not func.is_view and name not in ALLOCATIONS:
            self.compute_ops += 1
        return func(*args, **(kwargs or {}))


CASES = [(m, v) for m in METHODS for v in VARIANTS]


@pytest.mark.parametrize(("method", "variant"), CASES, ids=["-".join(c) for c in CASES])
def test_launch_count(benchmark: Any, size: str, device: torch.device, method: str, variant: str) -> None:
    """Ops dispatched by the second step (the first one creates momentum buffers)."""
    shape = Shape(64, 8 if size == "smoke" else 32)
    cell = make_cell(KEY, method, variant, size, device, channels_last=False, shape=shape)
    cell.step()
    counter = OpCounter()

    def counted_step() -> None:
        counter.ops.clear()
        counter.compute_ops = 0
        with counter:
            cell.step()

    benchmark.group = f"launch-count {KEY}"
    benchmark.extra_info.update(environment(device))
    benchmark.extra_info.update(cell.info)
    benchmark.extra_info["kind"] = "launches"
    benchmark.pedantic(counted_step, rounds=1, iterations=1)
    benchmark.extra_info["aten_ops"] = sum(counter.ops.values())
    benchmark.extra_info["compute_ops"] = counter.compute_ops
    benchmark.extra_info["custom_ops"] = sum(n for op, n in counter.ops.items() if op.startswith("focalsam."))
    benchmark.extra_info["top_ops"] = dict(counter.ops.most_common(12))
    assert benchmark.extra_info["aten_ops"] > 0
