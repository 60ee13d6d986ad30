"""Python API: Hessian spectrum, lambda_max, Tr(H) and landscapes per class group of a model or a
checkpoint (``focalsam analyze`` calls :func:`analyze_checkpoint` and :func:`write_outputs`).

Every random draw comes from a ``torch.Generator`` seeded from ``settings.seed`` and the stage and
group indices, so a result is reproducible from the seed printed with it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..train.files import atomic_write_text
from .density import SLQResult, slq
from .eigen import EIGEN_METHODS, EigenResult
from .errors import AnalysisError
from .hvp import HessianOperator, LossFn
from .landscape import Landscape, filter_normalized_direction, landscape_1d, landscape_2d
from .progress import stage
from .settings import AnalysisSettings
from .trace import TraceResult, hutchinson_trace

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class GroupAnalysis:
    """Everything measured on one group."""

    classes: list[int]
    samples: int
    loss: float
    parameters: int
    eigen: EigenResult | None = None
    trace: TraceResult | None = None
    density: SLQResult | None = None
    landscape_1d: Landscape | None = None
    landscape_2d: Landscape | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self, sigma_rel: float) -> dict[str, Any]:
        """JSON-ready summary (the smoothed density on its grid included)."""
        out: dict[str, Any] = {
            "classes": self.classes,
            "samples": self.samples,
            "loss": self.loss,
            "parameters": self.parameters,
            "seconds": self.seconds,
        }
        if self.eigen is not None:
            out["eigen"] = self.eigen.to_dict()
            out["lambda_max"] = self.eigen.eigenvalues[0]
        if self.trace is not None:
            out["trace"] = self.trace.to_dict()
        if self.density is not None:
            grid, dens, sigma = self.density.density(sigma_rel)
            out["density"] = {
                **self.density.to_dict(),
                "sigma": sigma,
                "grid": grid.tolist(),
                "density": dens.tolist(),
            }
        for name in ("landscape_1d", "landscape_2d"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_dict()
        return out


def probe_batch(settings: AnalysisSettings, device: torch.device) -> int:
    """Probes per batched product: ``settings.probe_batch``, else 8 on CUDA and 1 on the CPU (where a
    batched double-backward pass was measured no faster per vector than single ones: ResNet-32,
    0.42-0.43 s per vector batched by 4 or 8 against 0.36-0.39 s single, one thread)."""
    if settings.probe_batch is not None:
        return settings.probe_batch
    return 8 if device.type == "cuda" else 1


def _generator(seed: int, stage_index: int, group_index: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage_index * 1_009 + group_index)


def analyze_group(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    settings: AnalysisSettings,
    group_index: int = 0,
    label: str = "group",
    progress: bool | None = None,
) -> GroupAnalysis:
    """Run the stages of ``settings`` on one group (model in eval mode: BatchNorm running statistics)."""
    settings.check()
    op = HessianOperator(
        model, loss_fn, inputs, targets, settings.chunk_size, DTYPES[settings.dtype], settings.cache_graph
    )
    result = GroupAnalysis(sorted(set(targets.tolist())), len(targets), op.loss_at(), op.dim)
    common = {"dim": op.dim, "dtype": op.dtype, "device": op.device}
    s = settings
    if "eigen" in s.stages:
        t0 = time.perf_counter()
        with stage(f"{label}: top-{s.top_k} eigenvalues ({s.eigen_method})", s.max_iter, progress) as tick:
            result.eigen = EIGEN_METHODS[s.eigen_method](
                op.matvec,
                k=s.top_k,
                tol=s.tol,
                max_iter=s.max_iter,
                generator=_generator(s.seed, 0, group_index),
                step=tick,
                **common,
            )
        result.seconds["eigen"] = time.perf_counter() - t0
    if "trace" in s.stages:
        t0 = time.perf_counter()
        with stage(f"{label}: Hutchinson trace", s.trace_probes, progress) as tick:
            result.trace = hutchinson_trace(
                op.matvec,
                probes=s.trace_probes,
                batch=probe_batch(s, op.device),
                generator=_generator(s.seed, 1, group_index),
                step=tick,
                **common,
            )
        result.seconds["trace"] = time.perf_counter() - t0
    if "density" in s.stages:
        t0 = time.perf_counter()
        with stage(f"{label}: SLQ density ({s.slq_runs} runs)", s.slq_steps, progress) as tick:
            result.density = slq(
                op.matvec,
                runs=s.slq_runs,
                steps=s.slq_steps,
                generator=_generator(s.seed, 2, group_index),
                step=tick,
                **common,
            )
        result.seconds["density"] = time.perf_counter() - t0
    if "landscape" in s.stages:
        t0 = time.perf_counter()
        gen = _generator(s.seed, 3, group_index)
        d1, d2 = filter_normalized_direction(op, gen), filter_normalized_direction(op, gen)
        total = s.landscape_points + s.landscape_2d_points
        with stage(f"{label}: loss landscapes", total, progress) as tick:
            result.landscape_1d = landscape_1d(op, d1, s.landscape_span, s.landscape_points, tick)
            result.landscape_2d = landscape_2d(op, d1, d2, s.landscape_span, s.landscape_2d_points, tick)
        result.seconds["landscape"] = time.perf_counter() - t0
    return result


@dataclass
class CheckpointAnalysis:
    """The analysis of one checkpoint: its run's description and one :class:`GroupAnalysis` per group."""

    checkpoint: str
    method: str
    description: dict[str, Any]
    groups: dict[str, GroupAnalysis]
    settings: AnalysisSettings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "checkpoint": self.checkpoint,
            "method": self.method,
            **self.description,
            "settings": {**dataclasses.asdict(self.settings), "stages": list(self.settings.stages)},
            "groups": {n: g.to_dict(self.settings.sigma_rel) for n, g in self.groups.items()},
        }


def analyze_checkpoint(
    path: str | Path,
    groups: Sequence[str] | None = None,
    classes: Sequence[Sequence[int]] | None = None,
    samples: int | None = None,
    device: str = "cpu",
    settings: AnalysisSettings | None = None,
    progress: bool | None = None,
) -> CheckpointAnalysis:
    """Load a ``focalsam train`` checkpoint, rebuild its run's model, training data (test-time
    transform, no augmentation) and per-sample loss (with the DRW weights of its last epoch), and
    analyse each group (see :func:`analyze_group`)."""
    from .run import load_run

    settings = settings or AnalysisSettings()
    settings.check()
    run = load_run(path, device)
    chosen = run.select(groups, classes)
    results = {}
    for index, (name, cls) in enumerate(chosen.items()):
        x, y = run.samples(cls, samples, torch.Generator().manual_seed(settings.seed + 7919 * index), name)
        results[name] = analyze_group(
            run.model,
            run.loss_fn,
            x.to(run.device),
            y.to(run.device),
            settings,
            index,
            f"{run.method} {name}",
            progress,
        )
    return CheckpointAnalysis(str(path), run.method, run.description, results, settings)


def write_outputs(analyses: Sequence[CheckpointAnalysis], out_dir: str | Path) -> list[Path]:
    """``analysis.json`` and the PNGs (``spectrum.png``, ``landscape_1d.png``, ``landscape_2d.png``,
    for the stages that ran) into ``out_dir``; returns the paths written."""
    from . import plots

    if not analyses:
        raise AnalysisError("nothing to write: no checkpoint was analysed")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "bn_mode": "eval (BatchNorm running statistics)",
        "checkpoints": [a.to_dict() for a in analyses],
    }
    paths = [out / "analysis.json"]
    atomic_write_text(json.dumps(payload, indent=1) + "\n", paths[0])
    paths += plots.write_figures(_by_method(analyses), out)
    return paths


def _by_method(analyses: Sequence[CheckpointAnalysis]) -> Mapping[str, CheckpointAnalysis]:
    out: dict[str, CheckpointAnalysis] = {}
    for a in analyses:
        key, n = a.method, 2
        while key in out:
            key, n = f"{a.method} ({n})", n + 1
        out[key] = a
    return out
