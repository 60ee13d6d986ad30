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
    env = {
        "device": "cpu",
        "device_name": "Test CPU",
        "python": "3",
        "torch": "t",
        "triton": "x",
        "cuda": "None",
        "commit": "abc",
        "num_threads": 2,
        "available_impls": ["reference", "cpp"],
    }
    return {"name": "b", "stats": {"median": median}, "extra_info": {**env, **info}}


def _rows() -> list[dict]:
    benches = []
    for method, variant, median in (
        ("sam", "reference", 0.5),
        ("sam", "fast", 0.25),
        ("focalsam", "reference", 0.8),
        ("focalsam", "fast", 0.4),
    ):
        benches.append(
            _bench(
                median,
                kind="step",
                setting="resnet32-cifar10lt",
                setting_title="R32",
                method=method,
                variant=variant,
                impl="cpp",
                channels_last=False,
                size="cpu",
                batch=64,
                image_size=32,
                steps_per_epoch=10,
                num_classes=10,
            )
        )
    for impl, median in (("reference", 0.3), ("foreach", 0.6), ("cpp", 0.075)):
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
                {"impl": "reference", "median_s": 0.2, "times_s": [0.2] * 3},
                {"impl": "cpp", "median_s": 0.05, "times_s": [0.05] * 3},
            ],
        )
    )
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


def test_bench_render_compares_like_with_like() -> None:
    """channels_last rows divide by reference SAM in channels_last, never by the NCHW baseline; the
    interleaved rows by reference SAM of their own layout; CC-SAM rows say what they perturb."""
    rows = []
    for method, variant, median, extra in (
        ("sam", "reference", 0.5, {}),
        ("focalsam", "fast", 0.6, {}),
        ("sam", "reference+cl", 0.4, {}),
        ("focalsam", "fast+cl", 0.5, {}),
        ("sgd", "fast", 0.25, {}),
        ("ccsam", "reference", 0.25, {"perturbs": "head", "perturbed_params": 650}),
        ("ccsam-last", "reference", 1.5, {"perturbs": "layer3 + pool + head", "perturbed_params": 150_000}),
    ):
        rows.append(
            _bench(
                median,
                kind="step",
                setting="resnet32-cifar10lt",
                setting_title="R32",
                method=method,
                variant=variant,
                impl="cpp",
                channels_last=variant.endswith("+cl"),
                size="cpu",
                batch=64,
                image_size=32,
                steps_per_epoch=10,
                num_classes=10,
                **extra,
            )
        )
    inter = [
        {
            "label": label,
            "method": m,
            "variant": v,
            "channels_last": cl,
            "impl": "cpp",
            "median_s": t,
            "times_s": [t],
        }
        for label, m, v, cl, t in (
            ("SAM reference", "sam", "reference", False, 0.5),
            ("Focal-SAM fast", "focalsam", "fast", False, 0.6),
            ("SAM reference, channels_last", "sam", "reference", True, 0.4),
            ("Focal-SAM fast, channels_last", "focalsam", "fast", True, 0.5),
        )
    ]
    rows.append(
        _bench(
            1.0,
            kind="interleaved",
            setting="resnet32-cifar10lt",
            setting_title="R32",
            size="cpu",
            batch=64,
            image_size=32,
            steps_per_epoch=10,
            num_classes=10,
            interleaved=inter,
        )
    )
    text = render_table.render(
        [{"name": b["name"], "median": b["stats"]["median"], **b["extra_info"]} for b in rows]
    )
    assert "| Focal-SAM (focalsam_fast) | 6 s (1.20x) |" in text
    assert "| Focal-SAM (focalsam_fast, channels_last) | 5 s (1.25x) |" in text
    assert "| SAM (reference, channels_last) | 4 s (1.00x) |" in text
    assert "| SGD (torch.optim.SGD fused=True) | 2.5 s (0.50x) |" in text
    assert "| CC-SAM, head only (reference) | 2.5 s (0.50x) |" in text
    assert "| CC-SAM, last layers (reference) | 15 s (3.00x) |" in text
    assert "head (0.00065M) / layer3 + pool + head (0.15M)" in text
    assert "| Focal-SAM fast, channels_last | channels_last | cpp | 0.5000 | 5 | 1.25x |" in text
    assert "| Focal-SAM fast | NCHW | cpp | 0.6000 | 6 | 1.20x |" in text
    nchw = text.index("| Focal-SAM (focalsam_fast) |")
    assert nchw < text.index("| SAM (reference, channels_last) |")  # same-layout rows first


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


def test_bench_render_merged_runs_name_every_commit() -> None:
    rows = _rows()
    rows[-1] = {**rows[-1], "commit": "def"}
    assert "- Commits (merged runs): `abc`, `def`;" in render_table.render(rows)
    assert "- Commit: `abc`;" in render_table.render(_rows())
