"""Optimizer-side micro-benchmark: the non-model part of one Focal-SAM step.

On the parameter sets of ResNet-50 (161 tensors, 25.6M) and the CLIP ViT-B/16 image encoder
(152 tensors, 86.2M), one round runs the three stages of :class:`focalsam_fast.optim.SAM`'s base
class exactly as a Focal-SAM step does: keep ``g2`` (``stash_grads``), global norm + perturb
(``perturb``), restore + ``g1 + g2`` + SGD momentum/weight-decay update
(``restore_and_update``), on each available ``impl`` (``reference`` is the official code's
per-tensor loop).  ``torch.optim.SGD(fused=True)`` is timed alone for scale: it is only the
update stage.  ``memory_probe`` times one flat ``o = p + s * g`` over as many elements as the set
has (12 bytes per fp32 element, torch's own element-wise kernel): the bandwidth that the table's
bytes-per-parameter figures are compared with.  Smoke runs keep the tensor counts and cap every
dimension at 8.  ``test_optimizer_side_interleaved`` runs reference, foreach, the fused impls and
the probe round-robin within each round, so their ratios share the machine's state (on a shared
machine the separate tests drift by +-20 % between each other).
Targets (kernels issue): cpp >= 3x faster than reference and >= 1.5x faster than foreach.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest
import torch

from benchmarks.common import bench_device, benchmark_interleaved, environment, sync
from focalsam_fast import kernels
from focalsam_fast.models import ResNet50
from focalsam_fast.optim import SAM

HP = {"lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4}
ROUNDS = {"smoke": (0, 1), "cpu": (2, 10), "paper": (5, 30)}


def param_shapes(name: str) -> list[tuple[int, ...]]:
    """Parameter shapes of ``resnet50`` (1000 classes) or ``vit_b16`` (CLIP's image encoder)."""
    with torch.device("meta"):
        if name == "resnet50":
            model = ResNet50(num_classes=1000)
        else:
            from open_clip.model import CLIPVisionCfg, _build_vision_tower

            model = _build_vision_tower(
                512, CLIPVisionCfg(image_size=224, layers=12, width=768, patch_size=16), quick_gelu=True
            )
    return [tuple(p.shape) for p in model.parameters()]


def impls(device: torch.device) -> list[str]:
    """Available impls plus the fused torch SGD baseline (Triton only when compiled for a GPU)."""
    names = [n for n in kernels.available_impls(device) if n != "triton" or device.type == "cuda"]
    return [*names, "torch_sgd_fused", "memory_probe"]


def make_round(shapes: list[tuple[int, ...]], impl: str, device: torch.device) -> Callable[[], None]:
    """One optimizer-side round on fresh tensors (weights ~0.02, gradients ~1e-3)."""
    gen = torch.Generator().manual_seed(0)

    def rand(scale: float) -> list[torch.Tensor]:
        return [(torch.randn(s, generator=gen) * scale).to(device) for s in shapes]

    if impl == "memory_probe":
        n = sum(torch.Size(s).numel() for s in shapes)
        p, g, o = (torch.randn(n, generator=gen).to(device) for _ in range(3))

        def triad() -> None:
            torch.add(p, g, alpha=1e-3, out=o)
            sync(device)

        return triad
    params = [torch.nn.Parameter(t) for t in rand(0.02)]
    g2, h, g1 = rand(1e-3), rand(1e-3), rand(1e-3)

    def set_grads(grads: list[torch.Tensor]) -> None:
        for p, g in zip(params, grads):
            p.grad = g

    if impl == "torch_sgd_fused":
        sgd = torch.optim.SGD(params, fused=True, **HP)

        def update_only() -> None:
            set_grads(g1)
            sgd.step()
            sync(device)

        return update_only
    opt = SAM(params, rho=0.05, impl=impl, **HP)

    def focal_sam_optimizer_side() -> None:
        set_grads(g2)
        opt.stash_grads()
        set_grads(h)
        opt.perturb()
        set_grads(g1)
        opt.restore_and_update()
        sync(device)

    return focal_sam_optimizer_side


@pytest.mark.parametrize("param_set", ["resnet50", "vit_b16"])
@pytest.mark.parametrize("impl", impls(bench_device()))
def test_optimizer_side(benchmark: Any, size: str, device: torch.device, param_set: str, impl: str) -> None:
    """norm + perturb + restore/combine/SGD on ``param_set`` with ``impl``."""
    if param_set == "vit_b16":
        pytest.importorskip("open_clip")
    shapes = param_shapes(param_set)
    full = sum(torch.Size(s).numel() for s in shapes)
    if size == "smoke":
        shapes = [tuple(min(d, 8) for d in s) for s in shapes]
    run = make_round(shapes, impl, device)
    benchmark.group = f"optimizer-side {param_set}"
    benchmark.extra_info.update(environment(device))
    benchmark.extra_info.update(
        {
            "kind": "optimizer",
            "param_set": param_set,
            "impl": impl,
            "size": size,
            "tensors": len(shapes),
            "params": sum(torch.Size(s).numel() for s in shapes),
            "params_full_size": full,
        }
    )
    warmup, rounds = ROUNDS[size]
    benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)


@pytest.mark.parametrize("param_set", ["resnet50", "vit_b16"])
def test_optimizer_side_interleaved(benchmark: Any, size: str, device: torch.device, param_set: str) -> None:
    """Every impl of :func:`test_optimizer_side` once per round; per-impl medians go to
    ``extra_info['interleaved']`` (the benchmark's own time is one whole round)."""
    if param_set == "vit_b16":
        pytest.importorskip("open_clip")
    shapes = param_shapes(param_set)
    if size == "smoke":
        shapes = [tuple(min(d, 8) for d in s) for s in shapes]
    names = [n for n in impls(device) if n != "torch_sgd_fused"]
    runs = [make_round(shapes, n, device) for n in names]
    benchmark.group = f"optimizer-side interleaved {param_set}"
    benchmark.extra_info.update(environment(device))
    benchmark.extra_info.update(
        {
            "kind": "optimizer_interleaved",
            "param_set": param_set,
            "size": size,
            "tensors": len(shapes),
            "params": sum(torch.Size(s).numel() for s in shapes),
        }
    )
    times = benchmark_interleaved(benchmark, runs, *ROUNDS[size])
    benchmark.extra_info["interleaved"] = [
        {"impl": n, "median_s": statistics.median(t), "times_s": t} for n, t in zip(names, times)
    ]
