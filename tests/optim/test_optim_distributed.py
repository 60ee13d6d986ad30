"""DistributedDataParallel (issue 11): N ranks on slices of one global batch equal one process on
the whole batch, with two all-reduces per SAM / ImbSAM / Focal-SAM step (g2 rides along with the
last backward's gradient)."""

from __future__ import annotations

import socket

import ddp_worker
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from method_cases import make

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available in this torch build")
WORLD, PER_RANK = 2, 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("method", "impl"), [("focal", "auto"), ("imbsam", "auto"), ("sam", "auto"),
                                              ("focal", "reference")])
def test_ranks_equal_one_process_on_the_global_batch(method: str, impl: str, tmp_path) -> None:
    out = tmp_path / "rank0.pt"
    mp.spawn(ddp_worker.worker, args=(WORLD, _free_port(), method, impl, PER_RANK, str(out)), nprocs=WORLD)
    got = torch.load(out)
    model = ddp_worker.net()
    opt = make(method, model, impl)
    ddp_worker.run(model, opt, ddp_worker.batches(WORLD, PER_RANK), 0, 1, WORLD * PER_RANK)
    for a, b in zip(got["weights"], model.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-12)
    assert got["allreduces"] == 2 * ddp_worker.STEPS  # one bucket: eps's gradient, then g1 + g2


def test_ccsam_ranks_equal_one_process_on_the_global_batch(tmp_path) -> None:
    """CC-SAM (closed form) on 2 ranks equals the reference per-class weights on one process and the
    whole batch; per step 1 gradient all-reduce (the optimizer's, DDP's hook never runs) and 2
    gathers (the batch sizes, then the features, logit gradients and labels)."""
    out = tmp_path / "rank0.pt"
    mp.spawn(ddp_worker.worker, args=(WORLD, _free_port(), "ccsam", "auto", PER_RANK, str(out)), nprocs=WORLD)
    got = torch.load(out)
    model = ddp_worker.net()
    opt = make("ccsam", model, "reference")
    ddp_worker.run_ccsam(model, opt, ddp_worker.batches(WORLD, PER_RANK), 0, WORLD * PER_RANK)
    for a, b in zip(got["weights"], model.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-12)
    assert (got["all_reduce"], got["all_gather_single"], got["ddp_allreduces"]) == (ddp_worker.STEPS,
                                                                                  2 * ddp_worker.STEPS, 0)
