"""Communication and step time of Focal-SAM on 2 CPU ranks (gloo): the DataParallel-style reference
(every backward all-reduced: 3 reductions of the whole gradient per step) against focalsam_fast
under DistributedDataParallel (2: g2 rides along with the last backward's gradient) and the
per-rank perturbation option ``--m-sharpness`` (1), in one run.

All-reduces are counted where they happen: the reference's on its explicit ``all_reduce`` calls
(one flat buffer per backward), DDP's in a communication hook (calls and bytes of every bucket; a
gradient over 1 MiB is reduced in several buckets), and reported per step as calls, bytes and
whole-gradient reductions (bytes / gradient bytes).  Step times are medians of
interleaved rounds (one step of each variant per round, all ranks aligned by a barrier); the
reference and DDP end at the same weights (checked), so the comparison is like for like.

The ranks run this file as a script (``python test_bench_distributed.py rank <json> <size>``),
started by :func:`focalsam_fast.train.distributed_launch.launch` (FileStore rendezvous, no port).
Sizes: ``smoke`` (CI: a small MLP, 3 timed rounds) and ``cpu``/``paper`` (an MLP of 2.1M
parameters, batch 64 per rank, 15 timed rounds).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("reference", "ddp", "m_sharpness")
EXPECTED_ROUNDS = {"reference": 3, "ddp": 2, "m_sharpness": 1}  # whole-gradient all-reduces per step
SHAPES = {
    "smoke": (32, (64, 128, 10), 1, 3),
    "cpu": (64, (512, 2048, 512, 100), 2, 15),
    "paper": (64, (512, 2048, 512, 100), 2, 15),
}  # per-rank batch, MLP widths, warm-up, timed rounds


def _mlp(widths: tuple[int, ...]) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


def _rank(out: str, size: str) -> None:
    """One rank: build the three variants from the same weights, run interleaved rounds, count."""
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    from focalsam_fast.optim import FocalSAM
    from focalsam_fast.train.distributed import DistRun, env_ranks, step_forward

    torch.set_num_threads(1)
    run = DistRun.start(env_ranks(), torch.device("cpu"), timeout_s=300)
    batch, widths, warmup, rounds = SHAPES[size]
    counts = [max(1, 500 // (k + 1)) for k in range(widths[-1])]  # long-tailed class counts
    gen = torch.Generator().manual_seed(1 + run.rank)
    data = [
        (
            torch.randn(batch, widths[0], generator=gen),
            torch.multinomial(torch.tensor(counts, dtype=torch.float), batch, True, generator=gen),
        )
        for _ in range(warmup + rounds)
    ]
    opts = dict(class_counts=counts, gamma=2.0, lam=0.8, rho=0.1, lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    stats = {v: {"calls": 0, "bytes": 0, "times": []} for v in VARIANTS}

    def reduce_all(params: list[torch.nn.Parameter]) -> None:  # DataParallel: a flat all-reduce per backward
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads]).div_(run.world)
        dist.all_reduce(flat)
        stats["reference"]["calls"] += 1
        stats["reference"]["bytes"] += flat.numel() * flat.element_size()
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))

    ref_model = _mlp(widths)
    ref_params = list(ref_model.parameters())
    ref_opt = FocalSAM(ref_params, **opts)

    def reference_step(x: torch.Tensor, y: torch.Tensor) -> None:  # the official code's stages
        losses = loss_fn(ref_model(x), y)
        c = ref_opt.sample_weights(y, losses)
        ((1 - c) * losses).sum().div(len(y)).backward(retain_graph=True)
        reduce_all(ref_params)
        ref_opt.first_step()
        (c * losses).sum().div(len(y)).backward()
        reduce_all(ref_params)
        ref_opt.second_step()
        (c * loss_fn(ref_model(x), y)).sum().div(len(y)).backward()
        reduce_all(ref_params)
        ref_opt.third_step()

    def ddp_variant(name: str) -> tuple[torch.nn.Module, DistributedDataParallel, FocalSAM]:
        model = _mlp(widths)
        net = DistributedDataParallel(model)

        def counting(state, bucket):  # DDP's default hook, counted (DDP checks the hook's annotations)
            stats[name]["calls"] += 1
            stats[name]["bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
            return allreduce_hook(state, bucket)

        net.register_comm_hook(None, counting)
        return model, net, FocalSAM(net.parameters(), **opts)

    ddp_model, ddp_net, ddp_opt = ddp_variant("ddp")
    _, ms_net, ms_opt = ddp_variant("m_sharpness")

    def ddp_step(net: Any, opt: FocalSAM, m_sharpness: bool, x: torch.Tensor, y: torch.Tensor) -> None:
        forward = step_forward(net, m_sharpness)
        opt.step(lambda: loss_fn(forward(x), y), targets=y)

    steps = {
        "reference": reference_step,
        "ddp": lambda x, y: ddp_step(ddp_net, ddp_opt, False, x, y),
        "m_sharpness": lambda x, y: ddp_step(ms_net, ms_opt, True, x, y),
    }
    for i, (x, y) in enumerate(data):
        if i == warmup:
            for v in VARIANTS:
                stats[v]["calls"] = stats[v]["bytes"] = 0
        for v in VARIANTS:
            dist.barrier()
            t0 = time.perf_counter()
            steps[v](x, y)
            if i >= warmup:
                stats[v]["times"].append(time.perf_counter() - t0)
    with torch.no_grad():  # relative L2 distance of all weights
        ref_w = torch.cat([p.reshape(-1) for p in ref_model.parameters()])
        ddp_w = torch.cat([p.reshape(-1) for p in ddp_model.parameters()])
        worst = float((ref_w - ddp_w).norm() / ref_w.norm())
    if run.main:
        n_params = sum(p.numel() for p in ref_model.parameters())
        Path(out).write_text(
            json.dumps(
                {"stats": stats, "params": n_params, "steps": rounds, "reference_vs_ddp_rel_l2": worst}
            )
        )
    run.finish()


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this torch build",
)
def test_allreduce_count_and_step_time(benchmark: Any, size: str, tmp_path: Path) -> None:
    """2 gloo ranks: all-reduces and bytes per step counted, median step times and their ratios."""
    from benchmarks.common import environment
    from focalsam_fast.train.distributed_launch import launch

    out = tmp_path / "rank0.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(Path(__file__).resolve()), "rank", str(out), size]
    codes: list[int] = []
    benchmark.group = "distributed focalsam 2 ranks"
    benchmark.pedantic(lambda: codes.append(launch(command, 2, env=env)), rounds=1, iterations=1)
    assert codes == [0]
    result = json.loads(out.read_text())
    stats, steps, n_params = result["stats"], result["steps"], result["params"]
    grad_bytes = 4 * n_params
    per_step = {
        v: {
            "allreduce_calls": stats[v]["calls"] / steps,
            "allreduce_bytes": stats[v]["bytes"] / steps,
            "median_s": statistics.median(stats[v]["times"]),
        }
        for v in VARIANTS
    }
    for v in VARIANTS:  # whole-gradient reductions = bytes / gradient bytes (DDP splits each into buckets)
        per_step[v]["reductions"] = per_step[v]["allreduce_bytes"] / grad_bytes
        assert per_step[v]["reductions"] == EXPECTED_ROUNDS[v], (v, per_step[v])
    buckets = per_step["ddp"]["allreduce_calls"] / EXPECTED_ROUNDS["ddp"]
    assert per_step["m_sharpness"]["allreduce_calls"] == buckets and buckets == int(buckets) >= 1
    assert result["reference_vs_ddp_rel_l2"] < 1e-5  # the same algorithm (fp32 summation order)
    ref = per_step["reference"]
    ratios = {
        v: {
            "bytes": per_step[v]["allreduce_bytes"] / ref["allreduce_bytes"],
            "time": per_step[v]["median_s"] / ref["median_s"],
        }
        for v in VARIANTS[1:]
    }
    benchmark.extra_info.update(environment(torch.device("cpu")))
    benchmark.extra_info.update(
        {
            "size": size,
            "ranks": 2,
            "backend": "gloo",
            "params": n_params,
            "per_step": per_step,
            "ratios_vs_reference": ratios,
            "reference_vs_ddp_rel_l2": result["reference_vs_ddp_rel_l2"],
        }
    )
    print(
        json.dumps(
            {
                "params": n_params,
                "per_step": per_step,
                "ratios": ratios,
                "reference_vs_ddp_rel_l2": result["reference_vs_ddp_rel_l2"],
            },
            indent=1,
        )
    )


if __name__ == "__main__" and sys.argv[1:2] == ["rank"]:
    _rank(sys.argv[2], sys.argv[3])
