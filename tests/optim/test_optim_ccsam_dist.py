"""CC-SAM under torch.distributed, error paths (2 gloo ranks): unequal per-rank batches and the
forms that are not the closed form are refused on every rank with one clear line, before any
gradient collective (no rank hangs).  Parity and collective counts: test_optim_distributed.py."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from focalsam_fast import CCSAM

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this torch build",
)
COUNTS = [40, 12, 3]


def _error(step) -> str:
    try:
        step()
    except (RuntimeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def worker(rank: int, store: str, out: str) -> None:
    """One rank (FileStore rendezvous and a barrier before teardown, as in ddp_worker.py)."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        x = torch.randn(4 + rank, 6, dtype=torch.float64)
        y = torch.arange(4 + rank) % 3
        opt = CCSAM(net.parameters(), head=net[-1], class_counts=COUNTS, lr=0.1)
        unequal = _error(lambda: opt.step(lambda: net[:-1](x), targets=y))
        last = CCSAM(net.parameters(), head=net[-1], class_counts=COUNTS, perturb="last", lr=0.1)
        not_closed = _error(lambda: last.step(lambda: net[:-1](x[:4]), targets=y[:4]))
        torch.save({"unequal": unequal, "not_closed": not_closed}, f"{out}.{rank}")
    finally:
        dist.barrier()
        dist.destroy_process_group()


def test_ccsam_distributed_errors_on_every_rank(tmp_path) -> None:
    out = str(tmp_path / "errors")
    mp.spawn(worker, args=(str(tmp_path / "store"), out), nprocs=2)
    for rank in range(2):
        got = torch.load(f"{out}.{rank}")
        assert got["unequal"] == (
            "ValueError: CCSAM under torch.distributed needs the same batch size on "
            "every rank, got [4, 5] (use DistributedSampler with drop_last=True or "
            "equal shards)"
        )
        assert got["not_closed"].startswith(
            "RuntimeError: CCSAM under torch.distributed runs the closed form only (perturb='head', an "
            "nn.Linear head on 2-D features, a fused impl); got perturb='last'"
        )
        assert "\n" not in got["not_closed"]
