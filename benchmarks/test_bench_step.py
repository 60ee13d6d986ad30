"""Per-step timing of SGD, SAM, ImbSAM, CC-SAM and Focal-SAM in the paper's six settings.

Each method runs (a) as the reference code does it (``impl='reference'``, contiguous NCHW,
``torch.optim.SGD`` for-loop/foreach default) and (b) on focalsam_fast's fastest path
(``impl='auto'``, ``channels_last`` for the ResNets, ``torch.optim.SGD(fused=True)`` for SGD).
One benchmark group per setting; per-epoch time = median step time x steps per epoch (data
loading excluded), rendered by ``benchmarks/render_table.py``.

``test_interleaved_resnet32`` times the ResNet-32 CIFAR-10-LT target comparison round-robin
(one step of each path per round), so load drift hits every path alike.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest
import torch

from benchmarks.common import (
    METHODS,
    ROUNDS,
    SETTINGS,
    VARIANTS,
    benchmark_interleaved,
    environment,
    family,
    make_cell,
)

CASES = [(k, m, v) for k in SETTINGS for m in METHODS for v in VARIANTS]


@pytest.mark.parametrize(("key", "method", "variant"), CASES, ids=["-".join(c) for c in CASES])
def test_step(benchmark: Any, size: str, device: torch.device, key: str, method: str, variant: str) -> None:
    """One training step of ``method`` in setting ``key`` on the ``variant`` path."""
    setting = SETTINGS[key]
    if family(setting) == "clip":
        pytest.importorskip("open_clip")
    cell = make_cell(key, method, variant, size, device)
    benchmark.group = f"step {key}"
    benchmark.extra_info.update(environment(device))
    benchmark.extra_info.update(cell.info)
    warmup, rounds = ROUNDS[size][family(setting)]
    benchmark.pedantic(cell.step, rounds=rounds, warmup_rounds=warmup, iterations=1)


# (label, method, variant, channels_last) of the interleaved ResNet-32 comparison
INTERLEAVED = (
    ("SGD reference", "sgd", "reference", False),
    ("SAM reference", "sam", "reference", False),
    ("Focal-SAM reference", "focalsam", "reference", False),
    ("Focal-SAM fast, NCHW", "focalsam", "fast", False),
    ("Focal-SAM fast, channels_last", "focalsam", "fast", True),
    ("SAM fast, channels_last", "sam", "fast", True),
)


def test_interleaved_resnet32(benchmark: Any, size: str, device: torch.device) -> None:
    """ResNet-32 CIFAR-10-LT: the target paths interleaved within each round; per-path medians
    go to ``extra_info['interleaved']`` (the benchmark's own time is one whole round)."""
    key = "resnet32-cifar10lt"
    cells = [make_cell(key, m, v, size, device, channels_last=cl) for _, m, v, cl in INTERLEAVED]
    steps = [c.step for c in cells]
    benchmark.group = f"interleaved {key}"
    benchmark.extra_info.update(environment(device))
    benchmark.extra_info.update({k: cells[0].info[k] for k in (
        "setting", "setting_title", "size", "batch", "image_size", "num_classes", "steps_per_epoch")})
    benchmark.extra_info["kind"] = "interleaved"
    times = benchmark_interleaved(benchmark, steps, *ROUNDS[size]["resnet32"])
    benchmark.extra_info["interleaved"] = [
        {"label": label, "method": m, "variant": v, "channels_last": cl, "impl": c.info["impl"],
         "median_s": statistics.median(t), "times_s": t}
        for (label, m, v, cl), c, t in zip(INTERLEAVED, cells, times)
    ]
