"""One direction for every ratio of the benchmark tables: time (or op count) / the baseline's, below
1 is faster; each table says so; the committed table is the renderer's output; outputs are git-ignored."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from benchmarks import render_table

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks"


def _bench(median: float, **info: object) -> dict:
    env = {"device": "cpu", "device_name": "Test CPU", "python": "3", "torch": "t", "triton": "x",
           "cuda": "None", "commit": "abc", "num_threads": 2, "available_impls": ["reference", "cpp"]}
    return {"name": "b", "stats": {"median": median}, "extra_info": {**env, **info}}


def _rows() -> list[dict]:
    benches = []
    for method, variant, median in (("sam", "reference", 0.5), ("sam", "fast", 0.25),
                                    ("focalsam", "reference", 0.8), ("focalsam", "fast", 0.4)):
        benches.append(_bench(median, kind="step", setting="resnet32-cifar10lt", setting_title="R32",
                              method=method, variant=variant, impl="cpp", channels_last=False, size="cpu",
                              batch=64, image_size=32, steps_per_epoch=10, num_classes=10))
    for impl, median in (("reference", 0.3), ("foreach", 0.6), ("cpp", 0.075)):
        benches.append(_bench(median, kind="optimizer", param_set="resnet50", impl=impl, tensors=161,
                              params=25_557_032))
    benches.append(_bench(0.5, kind="optimizer_interleaved", param_set="resnet50", tensors=161,
                          params=25_557_032, interleaved=[
                              {"impl": "reference", "median_s": 0.2, "times_s": [0.2] * 3},
                              {"impl": "cpp", "median_s": 0.05, "times_s": [0.05] * 3}]))
    return [{"name": b["name"], "median": b["stats"]["median"], **b["extra_info"]} for b in benches]


def test_bench_render_ratios_are_time_over_baseline() -> None:
    text = render_table.render(_rows())
    # 2x faster paths read 0.50x, a slower one above 1: never a speed-up
    assert "| SAM (focalsam_fast) | 2.5 s (0.50x) |" in text
    assert "| Focal-SAM (reference) | 8 s (1.60x) |" in text
    assert "| cpp | 75.0 ms (0.25x reference) |" in text
    assert "| foreach | 600.0 ms (2.00x reference) |" in text
    assert "cpp 50.0 ms (0.25x)" in text
    assert "cpp time = 0.25x reference (target <= 0.33x, i.e. 3x faster: met)" in text
    assert "cpp time = 0.12x foreach (target <= 0.67x, i.e. 1.5x faster: met)" in text
    assert "faster than" not in text and "speed-up" not in text


def test_bench_render_every_section_with_ratios_says_which() -> None:
    for text in (render_table.render(_rows()), (DOCS / "cpu-2core.md").read_text()):
        sections = re.split(r"^## ", text, flags=re.M)[1:]
        with_ratios = [s for s in sections if re.search(r"\d\.\d\dx", s)]
        assert len(with_ratios) >= 3
        for section in with_ratios:
            assert "below 1 is faster" in section or "below 1 is fewer" in section, section.splitlines()[0]


def test_bench_render_committed_table_is_the_renderers(tmp_path: Path) -> None:
    out = tmp_path / "new" / "table.md"  # the output folder is created
    assert render_table.main([str(DOCS / "cpu-2core.json"), "-o", str(out)]) == 0
    assert out.read_text().strip() == (DOCS / "cpu-2core.md").read_text().strip()
    summary = " ".join((DOCS / "README.md").read_text().split())
    assert "faster than reference" not in summary and "never a speed-up" in summary


def test_bench_render_outputs_folder_is_ignored() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench-out/cpu.json"], cwd=REPO)
    assert ignored.returncode == 0
    assert json.loads((DOCS / "cpu-2core.json").read_text())["benchmarks"]  # the published JSON stays tracked
