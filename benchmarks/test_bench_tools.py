"""Tests of the benchmark tooling: ``render_table.py`` (``gpu_check.sh``: test_bench_gpu_check.py)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import render_table


def _bench(median: float, **info: object) -> dict:
    env = {
        "device": "cpu",
        "device_name": "Test CPU (2 cores)",
        "python": "3",
        "torch": "t",
        "triton": "x",
        "cuda": "None",
        "commit": "abc",
        "num_threads": 2,
        "load_avg_1m": 1.0,
        "available_impls": ["reference", "cpp"],
    }
    return {"name": "b", "stats": {"median": median}, "extra_info": {**env, **info}}


def test_render_table_shapes_and_targets(tmp_path: Path) -> None:
    """Per-epoch = median x steps; ratios to reference SAM; launch and optimizer targets."""
    settings = {"resnet32-cifar10lt": 10, "resnet32-cifar100lt": 100}
    benches = []
    for key, classes in settings.items():
        cc = 0.25 + classes / 1e3
        for method, variant, median in (
            ("sam", "reference", 0.5),
            ("focalsam", "reference", 0.6),
            ("focalsam", "fast", 0.55),
            ("ccsam", "reference", cc),
        ):
            benches.append(
                _bench(
                    median,
                    kind="step",
                    setting=key,
                    setting_title=key,
                    method=method,
                    variant=variant,
                    impl="cpp",
                    channels_last=variant == "fast",
                    size="cpu",
                    batch=64,
                    image_size=32,
                    steps_per_epoch=100,
                    num_classes=classes,
                )
            )
    for method, variant, ops in (("sam", "reference", 1000), ("focalsam", "fast", 650)):
        benches.append(
            _bench(
                0.1,
                kind="launches",
                setting_title="R32",
                batch=64,
                method=method,
                variant=variant,
                impl="cpp",
                aten_ops=ops,
                compute_ops=ops // 2,
            )
        )
    for impl, median in (("reference", 0.3), ("foreach", 0.2), ("cpp", 0.09), ("memory_probe", 0.02)):
        benches.append(
            _bench(median, kind="optimizer", param_set="resnet50", impl=impl, tensors=161, params=25_557_032)
        )
    benches.append(
        _bench(
            0.5,
            kind="optimizer_interleaved",
            param_set="resnet50",
            tensors=161,
            params=25_557_032,
            interleaved=[
                {"impl": "reference", "median_s": 0.28, "times_s": [0.28] * 3},
                {"impl": "foreach", "median_s": 0.21, "times_s": [0.21] * 3},
                {"impl": "cpp", "median_s": 0.1, "times_s": [0.1] * 3},
                {"impl": "memory_probe", "median_s": 0.025, "times_s": [0.025] * 3},
            ],
        )
    )
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"benchmarks": benches}))
    out = tmp_path / "t.md"
    assert render_table.main([str(path), "-o", str(out)]) == 0
    text = out.read_text()
    assert "| SAM (reference) | 50 s (1.00x) | 50 s (1.00x) |" in text
    assert "| Focal-SAM (focalsam_fast) | 55 s (1.10x) | 55 s (1.10x) |" in text
    assert "1.10x reference SAM (target <= 1.33x: met)" in text
    assert "10 -> 100 classes: 0.52x -> 0.70x (grows with classes: met)" in text
    assert "= 0.65x reference SAM's 1,000 (target <= 0.7x: met)" in text
    assert "cpp time = 0.30x reference (target <= 0.33x, i.e. 3x faster: met)" in text
    assert "cpp time = 0.45x foreach (target <= 0.67x, i.e. 1.5x faster: met)" in text
    assert (
        "resnet50 (interleaved): cpp time = 0.36x reference (target <= 0.33x, i.e. 3x faster: **NOT met**)"
    ) in text
    assert "interleaved (3 rounds, every impl once per round" in text
    # bandwidth from the interleaved medians when the run has them
    assert (
        "resnet50 (interleaved): memory probe 12.3 GB/s (12 B/param); fused step at 40 B/param: cpp 10.2 GB/s"
    ) in text
