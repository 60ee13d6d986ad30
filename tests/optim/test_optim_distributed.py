"""DistributedDataParallel (issue 11): N ranks on slices of one global batch equal one process on
the whole batch, with two all-reduces per SAM / ImbSAM / Focal-SAM step (g2 rides along with the
last backward's gradient)."""

from __future__ import annotations

import ddp_worker
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from method_cases import make

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this torch build",
)
WORLD, PER_RANK = 2, 6


def _spawn(tmp_path, method: str, impl: str) -> dict:
    """Run the worker on WORLD gloo ranks; return what rank 0 saved."""
    out = tmp_path / "rank0.pt"
    mp.spawn(
        ddp_worker.worker,
        args=(WORLD, str(tmp_path / "store"), method, impl, PER_RANK, str(out)),
        nprocs=WORLD,
    )
    return torch.load(out)


@pytest.mark.parametrize(
    ("method", "impl"), [("focal", "auto"), ("imbsam", "auto"), ("sam", "auto"), ("focal", "reference")]
)
def test_ranks_equal_one_process_on_the_global_batch(method: str, impl: str, tmp_path) -> None:
    got = _spawn(tmp_path, method, impl)
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
    got = _spawn(tmp_path, "ccsam", "auto")
    model = ddp_worker.net()
    opt = make("ccsam", model, "reference")
    ddp_worker.run_ccsam(model, opt, ddp_worker.batches(WORLD, PER_RANK), 0, WORLD * PER_RANK)
    for a, b in zip(got["weights"], model.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-12)
    assert (got["all_reduce"], got["all_gather_single"], got["ddp_allreduces"]) == (
        ddp_worker.STEPS,
        2 * ddp_worker.STEPS,
        0,
    )
