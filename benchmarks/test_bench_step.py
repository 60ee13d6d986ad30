"""Per-step timing of SGD, SAM, ImbSAM, CC-SAM and Focal-SAM in the paper's six settings.

Each method runs (a) as the reference code does it (``impl='reference'``, ``torch.optim.SGD``
for-loop/foreach default) and (b) on focalsam_fast's path (``impl='auto'``;
``torch.optim.SGD(fused=True)`` for SGD), both on the same model, contiguous NCHW, same data.
The ResNets' SAM and Focal-SAM also run both paths in ``channels_last`` (separate variants, the
pair compared with each other only).  CC-SAM runs head-only and last-layers (see
``benchmarks/common.py``).  One benchmark group per setting; per-epoch time = median step time x
steps per epoch (data loading excluded), rendered by ``benchmarks/render_table.py``.

``test_interleaved_resnet32`` times the ResNet-32 CIFAR-10-LT target comparison round-robin
(one step of each path per round, both layouts), so load drift hits every path alike.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest
import torch

from benchmarks.common import ROUNDS, SETTINGS, benchmark_interleaved, cases, environment, family, make_cell

CASES = cases(list(SETTINGS))


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


# (label, method, variant, channels_last) of the interleaved ResNet-32 comparison: every path in
# both layouts, each compared with reference SAM in its own layout
INTERLEAVED = (
    ("SGD reference", "sgd", "reference", False),
    ("SAM reference", "sam", "reference", False),
    ("SAM fast", "sam", "fast", False),
    ("Focal-SAM reference", "focalsam", "reference", False),
    ("Focal-SAM fast", "focalsam", "fast", False),
    ("SAM reference, channels_last", "sam", "reference", True),
    ("SAM fast, channels_last", "sam", "fast", True),
    ("Focal-SAM reference, channels_last", "focalsam", "reference", True),
    ("Focal-SAM fast, channels_last", "focalsam", "fast", True),
)


def test_interleaved_resnet32(benchmark: Any, size: str, device: torch.device) -> None:
    """ResNet-32 CIFAR-10-LT: the target paths interleaved within each round; per-path medians
    go to ``extra_info['interleaved']`` (the benchmark's own time is one whole round)."""
    key = "resnet32-cifar10lt"
    cells = [make_cell(key, m, v, size, device, channels_last=cl) for _, m, v, cl in INTERLEAVED]
    steps = [c.step for c in cells]
    benchmark.group = f"interleaved {key}"
    benchmark.extra_info.update(environment(device))
    benchmark.extra_info.update(
        {
            k: cells[0].info[k]
            for k in (
                "setting",
                "setting_title",
                "size",
                "batch",
                "image_size",
                "num_classes",
                "steps_per_epoch",
            )
        }
    )
    benchmark.extra_info["kind"] = "interleaved"
    times = benchmark_interleaved(benchmark, steps, *ROUNDS[size]["resnet32"])
    benchmark.extra_info["interleaved"] = [
        {
            "label": label,
            "method": m,
            "variant": v,
            "channels_last": cl,
            "impl": c.info["impl"],
            "median_s": statistics.median(t),
            "times_s": t,
        }
        for (label, m, v, cl), c, t in zip(INTERLEAVED, cells, times)
    ]
