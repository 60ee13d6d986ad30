"""Worker of the DistributedDataParallel tests (a module on the test path, so spawned processes
can import it): N gloo ranks each step on their slice of one global batch."""

from __future__ import annotations

import gc

import torch
import torch.distributed as dist
import torch.nn.functional as F
from method_cases import make
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

STEPS = 3


def net(seed: int = 0) -> nn.Sequential:
    """No BatchNorm: per-rank batch statistics would differ from one process on the whole batch."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def batches(world: int, per_rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1234)
    n = world * per_rank
    return [
        (torch.randn(n, 6, dtype=torch.float64, generator=gen), torch.randint(0, 3, (n,), generator=gen))
        for _ in range(STEPS)
    ]


def run(model: nn.Module, opt, data, rank: int, world: int, per_rank: int) -> None:
    for x, y in data:
        xs, ys = x[rank * per_rank : (rank + 1) * per_rank], y[rank * per_rank : (rank + 1) * per_rank]
        opt.step(lambda xs=xs, ys=ys: F.cross_entropy(model(xs), ys, reduction="none"), targets=ys)


def count_collectives() -> dict[str, int]:
    """From now on, count this process's calls of ``dist.all_reduce`` and ``dist.all_gather_single``."""
    counts = dict.fromkeys(("all_reduce", "all_gather_single"), 0)

    def counting(name: str):
        original = getattr(dist, name)

        def counted(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        return counted

    for name in counts:
        setattr(dist, name, counting(name))
    return counts


def run_ccsam(model: nn.Sequential, opt, data, rank: int, per_rank: int) -> None:
    """CC-SAM steps: the closure returns the features of ``model[:-1]`` (not through DDP's forward)."""
    for x, y in data:
        xs, ys = x[rank * per_rank : (rank + 1) * per_rank], y[rank * per_rank : (rank + 1) * per_rank]
        opt.step(lambda xs=xs: model[:-1](xs), targets=ys)


def worker(rank: int, world: int, store: str, method: str, impl: str, per_rank: int, out: str) -> None:
    """One rank. The ranks meet through a FileStore (no TCP port to race for, no store server thread on
    rank 0). Teardown order: every object of the run (DDP's reducer and the work it holds) is freed
    while the interpreter is whole, the ranks wait for each other, and only then is gloo torn down,
    so no rank closes its pairs while a peer still uses them and no gloo work is left for interpreter
    finalisation to destroy (a SIGABRT: "terminate called without an active exception")."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        _work(rank, world, method, impl, per_rank, out)
    finally:
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def _work(rank: int, world: int, method: str, impl: str, per_rank: int, out: str) -> None:
    """The steps of one rank; what rank 0 saves goes to ``out``."""
    torch.set_num_threads(1)
    model = net()
    ddp = DistributedDataParallel(model)
    calls = {"n": 0}

    def counting(state, bucket):
        calls["n"] += 1
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, counting)
    opt = make(method, model, impl, params=ddp.parameters())
    if method == "ccsam":
        collectives = count_collectives()
        run_ccsam(model, opt, batches(world, per_rank), rank, per_rank)
        if rank == 0:
            torch.save(
                {
                    "weights": [p.detach() for p in model.parameters()],
                    "ddp_allreduces": calls["n"],
                    **collectives,
                },
                out,
            )
        return
    run(ddp, opt, batches(world, per_rank), rank, world, per_rank)
    if rank == 0:
        torch.save({"weights": [p.detach() for p in model.parameters()], "allreduces": calls["n"]}, out)
