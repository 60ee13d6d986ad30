"""Render pytest-benchmark JSON from ``benchmarks/`` into markdown tables and target checks.

Usage::

    python benchmarks/render_table.py RESULT.json [MORE.json ...] [-o TABLE.md]

Tables: seconds per epoch (median step time x steps per epoch, data loading excluded) with the
ratio to reference SAM in the same setting *and the same memory layout*, one column per setting
(the paper's shape): first the same-layout (NCHW) rows, then the channels_last rows, each
labelled; the interleaved ResNet-32 comparison (both layouts); dispatched ATen ops per step; the
optimizer-side micro-benchmark.  Then the targets of the benchmark issue, each marked met / not met.  Several
JSON files (e.g. one per setting from ``gpu_check.sh``) are merged.

One convention for every ratio: ``r x`` is a cost ratio, this path's time (or op count) divided
by the named baseline's, so **below 1 is faster** (fewer ops); never a speed-up.  Each table's
caption says so (:data:`RATIO_CAPTION`).  Write the outputs under ``bench-out/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

METHODS = ("sgd", "sam", "imbsam", "ccsam", "ccsam-last", "focalsam")
TITLES = {
    "sgd": "SGD",
    "sam": "SAM",
    "imbsam": "ImbSAM",
    "ccsam": "CC-SAM, head only",
    "ccsam-last": "CC-SAM, last layers",
    "focalsam": "Focal-SAM",
}
CL_SUFFIX = "+cl"  # channels_last variants: reference+cl, fast+cl
SETTING_ORDER = (
    "resnet32-cifar10lt",
    "resnet32-cifar100lt",
    "resnet50-imagenetlt",
    "resnet50-inat2018",
    "clip-lift-imagenetlt",
    "clip-fft-imagenetlt",
)
PAIRS = (("resnet32-cifar10lt", "resnet32-cifar100lt"), ("resnet50-imagenetlt", "resnet50-inat2018"))
SIZE_NOTES = {
    "smoke": "smoke size (tiny inputs, stand-in models): the numbers only show the code runs",
    "cpu": "CPU-sized variant: ResNet-32 at the paper's size; ResNet-50 and ViT-B/16 at reduced "
    "batch and image size (see the shape row)",
    "paper": "the paper's batch and image sizes",
}

Row = dict[str, Any]

RATIO_CAPTION = (
    "Ratios (`x`) are this path's time divided by the baseline's time in the same setting and "
    "the same memory layout: below 1 is faster, above 1 slower."
)


def load(paths: Iterable[Path]) -> list[Row]:
    """All benchmarks of the files: name, median seconds and extra_info."""
    rows: list[Row] = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        for b in data.get("benchmarks", []):
            rows.append({"name": b["name"], "median": b["stats"]["median"], **b.get("extra_info", {})})
    return rows


def fmt_s(seconds: float) -> str:
    """Seconds with three significant digits."""
    return f"{seconds:.3g}" if seconds < 100 else f"{seconds:.0f}"


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as ``0.63x`` (the one ratio convention: below 1 is faster / fewer)."""
    return f"{value / baseline:.2f}x"


def mark(ok: bool) -> str:
    """'met' or 'NOT met'."""
    return "met" if ok else "**NOT met**"


def environment_lines(rows: Sequence[Row]) -> list[str]:
    """Device, versions, commit, threads and load range of the rows."""
    if not rows:
        return []
    r = rows[0]
    loads = [x["load_avg_1m"] for x in rows if "load_avg_1m" in x]
    sizes = sorted({x["size"] for x in rows if "size" in x})
    commits = ", ".join(f"`{c}`" for c in dict.fromkeys(x["commit"] for x in rows if "commit" in x))
    lines = [
        f"- Device: {r['device_name']} (`{r['device']}`), torch.set_num_threads({r['num_threads']})",
        f"- Versions: Python {r['python']}, torch {r['torch']}, Triton {r['triton']}, CUDA {r['cuda']}",
        f"- Commit{'s (merged runs)' if ',' in commits else ''}: {commits}; available impls: "
        f"{', '.join(r['available_impls'])}",
    ]
    if loads:
        lines.append(f"- 1-minute load average during the run: {min(loads):.2f} to {max(loads):.2f}")
    lines += [f"- Size `{s}`: {SIZE_NOTES.get(s, s)}" for s in sizes]
    return lines


def row_label(method: str, variant: str) -> str:
    """Row label: ``Focal-SAM (focalsam_fast)``, ``SAM (reference, channels_last)``,
    ``SGD (torch.optim.SGD fused=True)``."""
    base = variant.removesuffix(CL_SUFFIX)
    if method == "sgd":
        path = "torch.optim.SGD fused=True" if base == "fast" else "torch.optim.SGD"
    else:
        path = "reference" if base == "reference" else "focalsam_fast"
    return f"{TITLES.get(method, method)} ({path}{', channels_last' if variant.endswith(CL_SUFFIX) else ''})"


def step_table(rows: Sequence[Row]) -> tuple[list[str], dict[tuple[str, str, str], float]]:
    """Per-epoch seconds and ratio to reference SAM of the same layout; also returns
    ``(setting, method, variant) -> s``."""
    steps = [r for r in rows if r.get("kind") == "step"]
    settings = [s for s in SETTING_ORDER if any(r["setting"] == s for r in steps)]
    settings += sorted({r["setting"] for r in steps} - set(settings))
    if not settings:
        return [], {}
    cell = {(r["setting"], r["method"], r["variant"]): r for r in steps}
    epoch = {k: r["median"] * r["steps_per_epoch"] for k, r in cell.items()}
    title = {r["setting"]: r["setting_title"] for r in steps}
    lines = [
        "| method (path) | " + " | ".join(title[s] for s in settings) + " |",
        "|---|" + "---:|" * len(settings),
    ]

    def info_row(label: str, fn: Any) -> str:
        vals = []
        for s in settings:
            r = next((cell[k] for k in cell if k[0] == s), None)
            vals.append(fn(s, r) if r is not None else "")
        return f"| {label} | " + " | ".join(vals) + " |"

    lines.append(
        info_row(
            "batch x image, steps/epoch",
            lambda s, r: f"{r['batch']} x {r['image_size']}px, {r['steps_per_epoch']}",
        )
    )
    variants = [("reference", "fast"), ("reference" + CL_SUFFIX, "fast" + CL_SUFFIX)]
    for pair in variants:
        present = [(m, v) for m in METHODS for v in pair if any(k[1:] == (m, v) for k in cell)]
        if pair[0].endswith(CL_SUFFIX) and present:
            lines.append(
                "| *channels_last (ratios to reference SAM, channels_last)* |" + " |" * len(settings)
            )
        for method, variant in present:
            vals = []
            for s in settings:
                t = epoch.get((s, method, variant))
                ref = epoch.get((s, "sam", pair[0]))
                if t is None:
                    vals.append("")
                else:
                    vals.append(f"{fmt_s(t)} s ({ratio(t, ref)})" if ref else f"{fmt_s(t)} s")
            lines.append(f"| {row_label(method, variant)} | " + " | ".join(vals) + " |")

    def perturbed(s: str, _: Row) -> str:
        parts = []
        for m in ("ccsam", "ccsam-last"):
            r = cell.get((s, m, "reference")) or cell.get((s, m, "fast"))
            if r is not None and r.get("perturbs"):
                parts.append(f"{r['perturbs']} ({r['perturbed_params'] / 1e6:.3g}M)")
        return " / ".join(parts)

    def classes(s: str, r: Row) -> str:
        return f"{r['mean_classes_per_batch']:.1f}" if "mean_classes_per_batch" in r else ""

    lines.append(info_row("CC-SAM perturbs (head only / last layers)", perturbed))
    lines.append(info_row("classes per batch (mean)", classes))

    def fast_path(s: str, _: Row) -> str:
        r = cell.get((s, "focalsam", "fast"))
        return "" if r is None else f"impl={r['impl']}"

    lines.append(info_row("focalsam_fast path", fast_path))
    return lines, epoch


def interleaved_table(rows: Sequence[Row]) -> tuple[list[str], dict[str, float]]:
    """The interleaved ResNet-32 comparison: median step, per epoch, ratio to reference SAM in the
    same memory layout."""
    inter = [r for r in rows if r.get("kind") == "interleaved"]
    if not inter:
        return [], {}
    r = inter[0]
    med = {e["label"]: e["median_s"] for e in r["interleaved"]}
    base = {
        e["channels_last"]: e["median_s"]
        for e in r["interleaved"]
        if e["method"] == "sam" and e["variant"] == "reference"
    }
    lines = [
        f"{r['setting_title']}, batch {r['batch']}, {r['image_size']}px, {r['steps_per_epoch']} "
        f"steps/epoch, {len(r['interleaved'][0]['times_s'])} interleaved rounds:",
        "",
        "| path | layout | impl | median step (s) | per epoch (s) | time / SAM reference, same layout |",
        "|---|---|---|---:|---:|---:|",
    ]
    for e in r["interleaved"]:
        ref = base.get(e["channels_last"])
        cell = ratio(e["median_s"], ref) if ref else ""
        layout = "channels_last" if e["channels_last"] else "NCHW"
        lines.append(
            f"| {e['label']} | {layout} | {e['impl']} | {e['median_s']:.4f} | "
            f"{fmt_s(e['median_s'] * r['steps_per_epoch'])} | {cell} |"
        )
    return lines, med


def launch_table(rows: Sequence[Row]) -> tuple[list[str], dict[tuple[str, str], int]]:
    """Dispatched ops per step, reference vs fused, and the ratio to the reference SAM count."""
    launches = {(r["method"], r["variant"]): r for r in rows if r.get("kind") == "launches"}
    if not launches:
        return [], {}
    counts = {k: r["aten_ops"] for k, r in launches.items()}
    compute = {k: r["compute_ops"] for k, r in launches.items()}
    ref_sam, ref_sam_c = counts.get(("sam", "reference")), compute.get(("sam", "reference"))
    r0 = next(iter(launches.values()))
    lines = [
        f"{r0['setting_title']}, batch {r0['batch']}, NCHW (the count does not depend on the image "
        "size). All dispatched ops; in brackets the ops that can run a kernel (no views/aliases such "
        "as `detach`, no bare allocations). Ratios are op counts divided by the named count: below 1 "
        "is fewer ops.",
        "",
        "| method | reference | fused (impl) | fused / reference | fused / reference SAM |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in METHODS:
        ref, fused = counts.get((m, "reference")), counts.get((m, "fast"))
        if ref is None or fused is None or not ref_sam or not ref_sam_c:
            continue
        ref_c, fused_c = compute[(m, "reference")], compute[(m, "fast")]
        impl = launches[(m, "fast")]["impl"]
        lines.append(
            f"| {TITLES[m]} | {ref:,} ({ref_c:,}) | {fused:,} ({fused_c:,}) {impl} | "
            f"{ratio(fused, ref)} ({ratio(fused_c, ref_c)}) | "
            f"{ratio(fused, ref_sam)} ({ratio(fused_c, ref_sam_c)}) |"
        )
    return lines, {**counts, **{(m, v + "-compute"): n for (m, v), n in compute.items()}}


OPT_LABELS = {
    "torch_sgd_fused": "torch.optim.SGD(fused=True), update only",
    "memory_probe": "memory probe: o = p + s g, one flat tensor",
}
FUSED_IMPLS = ("cpp", "cuda", "triton")
# bytes per fp32 parameter of the fused Focal-SAM optimizer side: norm 4, perturb 12 (read w, h;
# write w + eps), restore + combine + SGD 24 (read w, g1, g2, buf; write w, buf)
FUSED_BYTES = 40


def optimizer_table(rows: Sequence[Row]) -> tuple[list[str], dict[tuple[str, str], float]]:
    """Optimizer-side medians per param set and impl (separate tests, then the interleaved run)
    with the time ratio to reference, and the bandwidth the fused step reaches next to the probe's."""
    opt = [r for r in rows if r.get("kind") == "optimizer"]
    inter = {r["param_set"]: r for r in rows if r.get("kind") == "optimizer_interleaved"}
    if not opt and not inter:
        return [], {}
    med = {(r["param_set"], r["impl"]): r["median"] for r in opt}
    for s, r in inter.items():
        med.update({(s, e["impl"] + "@interleaved"): e["median_s"] for e in r["interleaved"]})
    meta = {r["param_set"]: r for r in [*opt, *inter.values()]}
    sets = [s for s in ("resnet50", "vit_b16") if s in meta]
    lines: list[str] = []
    if opt:
        head = " | ".join(f"{s} ({meta[s]['tensors']} tensors, {meta[s]['params'] / 1e6:.1f}M)" for s in sets)
        lines += [f"| impl | {head} |", "|---|" + "---:|" * len(sets)]
        for impl in dict.fromkeys(r["impl"] for r in opt):
            vals = []
            for s in sets:
                t, ref = med.get((s, impl)), med.get((s, "reference"))
                cell = "" if t is None else f"{t * 1e3:.1f} ms"
                vals.append(f"{cell} ({ratio(t, ref)} reference)" if t and ref else cell)
            lines.append(f"| {OPT_LABELS.get(impl, impl)} | " + " | ".join(vals) + " |")
    for s in sets:
        if s in inter:
            im = {e["impl"]: e["median_s"] for e in inter[s]["interleaved"]}
            ref = im.get("reference")
            parts = ", ".join(
                f"{i} {t * 1e3:.1f} ms" + (f" ({ratio(t, ref)})" if ref else "") for i, t in im.items()
            )
            n = len(inter[s]["interleaved"][0]["times_s"])
            lines.append(
                f"\n{s}, interleaved ({n} rounds, every impl once per round; time / reference "
                f"time, below 1 is faster): {parts}."
            )
    for s in sets:
        how = "@interleaved" if (s, "memory_probe@interleaved") in med else ""
        probe, params = med.get((s, "memory_probe" + how)), meta[s]["params"]
        fused = [(i, med[(s, i + how)]) for i in FUSED_IMPLS if (s, i + how) in med]
        if probe and fused:
            rates = ", ".join(f"{i} {FUSED_BYTES * params / t / 1e9:.1f} GB/s" for i, t in fused)
            lines.append(
                f"\n{s}{' (interleaved)' if how else ''}: memory probe "
                f"{12 * params / probe / 1e9:.1f} GB/s (12 B/param); fused step at {FUSED_BYTES} "
                f"B/param: {rates}."
            )
    return lines, med


def targets(
    epoch: dict[tuple[str, str, str], float],
    inter: dict[str, float],
    counts: dict[tuple[str, str], int],
    opt: dict[tuple[str, str], float],
    classes: dict[str, int],
) -> list[str]:
    """The issue's targets, each with the measured numbers and met / NOT met."""
    out: list[str] = []
    for s in ("resnet32-cifar10lt", "resnet32-cifar100lt"):
        fast, ref_sam, ref_focal = (
            epoch.get((s, "focalsam", "fast")),
            epoch.get((s, "sam", "reference")),
            epoch.get((s, "focalsam", "reference")),
        )
        if fast and ref_sam and ref_focal:
            r = fast / ref_sam
            out.append(
                f"- {s}: fused Focal-SAM per epoch = {r:.2f}x reference SAM (target <= 1.33x: "
                f"{mark(r <= 1.33)}); {fast / ref_focal:.2f}x reference Focal-SAM (target < 1: "
                f"{mark(fast < ref_focal)})"
            )
    for suffix, layout in (("", "NCHW"), (", channels_last", "channels_last")):
        sam, focal = inter.get("SAM reference" + suffix), inter.get("Focal-SAM reference" + suffix)
        label = "Focal-SAM fast" + suffix
        if sam and focal and label in inter:
            r = inter[label] / sam
            out.append(
                f"- interleaved ResNet-32 CIFAR-10-LT, {layout}: fused Focal-SAM {r:.2f}x reference "
                f"SAM (<= 1.33x: {mark(r <= 1.33)}), {inter[label] / focal:.2f}x reference Focal-SAM "
                f"(< 1: {mark(inter[label] < focal)})"
            )
    for method, variant in itertools.product(("ccsam", "ccsam-last"), ("reference", "fast")):
        for pair in PAIRS:
            ratios = []
            for s in pair:
                cc, sam = epoch.get((s, method, variant)), epoch.get((s, "sam", "reference"))
                if cc and sam:
                    ratios.append(cc / sam)
            if len(ratios) == 2:
                grows = ratios[1] > ratios[0]
                out.append(
                    f"- {TITLES[method]} ({variant}) ratio to reference SAM, {classes[pair[0]]} -> "
                    f"{classes[pair[1]]} classes: {ratios[0]:.2f}x -> {ratios[1]:.2f}x "
                    f"(grows with classes: {mark(grows)})"
                )
    for suffix, what in (("", "dispatched ops"), ("-compute", "kernel-running ops")):
        fused, ref = counts.get(("focalsam", "fast" + suffix)), counts.get(("sam", "reference" + suffix))
        if fused and ref:
            out.append(
                f"- launches ({what}): fused Focal-SAM {fused:,} = {fused / ref:.2f}x reference "
                f"SAM's {ref:,} (target <= 0.7x: {mark(fused / ref <= 0.7)})"
            )
    for s, how in itertools.product(("resnet50", "vit_b16"), ("", "@interleaved")):
        fast = opt.get((s, "cpp" + how))
        if fast is None:
            continue
        ref, fe = opt.get((s, "reference" + how)), opt.get((s, "foreach" + how))
        label = f"optimizer side {s}{' (interleaved)' if how else ''}"
        if ref:
            out.append(
                f"- {label}: cpp time = {ratio(fast, ref)} reference (target <= 0.33x, i.e. 3x "
                f"faster: {mark(fast * 3 <= ref)})"
            )
        if fe:
            out.append(
                f"- {label}: cpp time = {ratio(fast, fe)} foreach (target <= 0.67x, i.e. 1.5x "
                f"faster: {mark(fast * 1.5 <= fe)})"
            )
    return out


def render(rows: Sequence[Row]) -> str:
    """The whole markdown document for ``rows``."""
    parts = ["## Environment", "", *environment_lines(rows), ""]
    step, epoch = step_table(rows)
    if step:
        parts += [
            "## Seconds per epoch (time ratio to reference SAM, same layout)",
            "",
            "Median step time x steps per epoch; data loading excluded; labels drawn from each "
            "data set's long-tailed training prior. Every cell of a column runs the same model on the "
            "same data; the first rows all run contiguous NCHW, the channels_last rows all run "
            "channels_last. In brackets: time / reference SAM's time in the same setting and the same "
            "layout (below 1 is faster). CC-SAM rows say what they perturb: the linear head only (the "
            "official code) or the last layers, one pass through them per class in the batch (the "
            "protocol of the paper's Table 1).",
            "",
            *step,
            "",
        ]
    inter_lines, inter = interleaved_table(rows)
    if inter_lines:
        parts += ["## Interleaved ResNet-32 comparison", "", RATIO_CAPTION, "", *inter_lines, ""]
    launch_lines, counts = launch_table(rows)
    if launch_lines:
        parts += ["## Dispatched ATen ops per step", "", *launch_lines, ""]
    opt_lines, opt = optimizer_table(rows)
    if opt_lines:
        parts += [
            "## Optimizer side: norm + perturb + restore/combine/SGD (median per step)",
            "",
            "In brackets: time / reference time (below 1 is faster).",
            "",
            *opt_lines,
            "",
        ]
    classes = {r["setting"]: r["num_classes"] for r in rows if r.get("kind") == "step"}
    checks = targets(epoch, inter, counts, opt, classes)
    if checks:
        parts += [
            "## Targets",
            "",
            "Every `x` is a time (or op-count) ratio to the named baseline: below 1 is faster (fewer).",
            "",
            *checks,
            "",
        ]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark --benchmark-json files")
    parser.add_argument("-o", "--output", type=Path, help="write the markdown here (default: stdout)")
    args = parser.parse_args(argv)
    rows = load(args.json)
    if not rows:
        print("no benchmarks in " + ", ".join(map(str, args.json)), file=sys.stderr)
        return 1
    text = render(rows)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
