r"""CC-SAM under torch.distributed: the global-batch step with one gradient all-reduce.

Every rank steps on its slice of one global batch (equal slices, as ``DistributedSampler`` gives).
CC-SAM's class gradients :math:`g_c` must be those of the global batch.  With the closed form of a
linear head (:mod:`.ccsam_linear`) they need only the detached features :math:`F`, the per-sample
logit gradients :math:`\Delta` and the labels of every rank's rows, :math:`B\times(D + C + 1)`
values, gathered once (:func:`gather_batch`); no parameter-sized tensor is exchanged for them.  Each
rank then perturbs its own rows against the global :math:`F_c, \Delta_c`, back-propagates its share
of the objective (:math:`\tfrac1b` of its rows) once, and :func:`all_reduce_mean` averages the
gradients of all parameters in one flat all-reduce: the mean over ranks of the per-rank objectives
is the objective of the global batch.

The closure runs the model without DistributedDataParallel's forward (e.g. ``ddp.module``), so DDP
reduces nothing itself; were its reducer armed, the second averaging would leave the values
unchanged and only cost a second all-reduce.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor


def gather_batch(feats: Tensor, delta: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every rank's detached features ``[B, D]``, logit gradients ``[B, C]`` and labels ``[B]``, in
    rank order; the per-rank batch sizes are checked first (one tiny gather) so that a mismatch is
    a clear error on every rank, never a hang."""
    world = dist.get_world_size()
    b = feats.shape[0]
    sizes = torch.empty(world, dtype=torch.long, device=feats.device)
    dist.all_gather_single(sizes, torch.tensor([b], dtype=torch.long, device=feats.device))
    if bool((sizes != b).any()):
        raise ValueError(
            f"CCSAM under torch.distributed needs the same batch size on every rank, got "
            f"{sizes.tolist()} (use DistributedSampler with drop_last=True or equal shards)"
        )
    dtype = torch.promote_types(feats.dtype, torch.float32)  # labels up to 2**24 stay exact
    packed = torch.cat([feats.detach().to(dtype), delta.to(dtype), targets.to(dtype)[:, None]], 1)
    out = packed.new_empty(world * b, packed.shape[1])
    dist.all_gather_single(out, packed)
    d, c = feats.shape[1], delta.shape[1]
    return out[:, :d].to(feats.dtype), out[:, d : d + c].to(delta.dtype), out[:, -1].round().long()


@torch.no_grad()
def all_reduce_mean(params: Sequence[Tensor]) -> None:
    """``p.grad`` := the mean over ranks of ``p.grad`` for every parameter (a missing gradient is
    zero), in one all-reduce of one flat buffer per dtype and device."""
    world = dist.get_world_size()
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    groups: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
    for p in params:
        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
