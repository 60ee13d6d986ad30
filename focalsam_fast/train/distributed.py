"""One training run on N processes (``torch.distributed``): who this rank is, starting and ending
the process group, and the few collectives the training system adds to DistributedDataParallel's
gradient all-reduce.

Launch contract (torchrun's): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in
the environment; the rendezvous is ``$FOCALSAM_DIST_INIT`` when set (``focalsam train --nproc N``
sets a ``file://`` FileStore in a private folder: no port to pick) and ``env://`` otherwise
(torchrun's ``MASTER_ADDR``/``MASTER_PORT``).  The backend follows the device: NCCL on CUDA (rank
``r`` uses ``cuda:<LOCAL_RANK>``), gloo on the CPU.

Semantics: ``--batch-size`` is the global batch B; each rank takes B / N samples of every step's
batch (:class:`~focalsam_fast.data.sampling.ShardSampler`), DDP averages the gradients, so a step
equals a one-process step on the whole batch up to summation order (BatchNorm statistics are per
rank, as DataParallel's replicas; rank 0's running statistics are the model's, as in DDP).

Failure: a rank that fails during set-up tells the others at :meth:`DistRun.agree` and every rank
stops with exit code 2; a rank that fails during training leaves its peers' next collective
failing (gloo at once, NCCL at the watchdog's timeout) or stopped by the launcher (SIGTERM, raised
here as :class:`Terminated`); every wait is bounded by the process group's timeout.
"""

from __future__ import annotations

import gc
import itertools
import os
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .errors import RunError, SetupError

ENV_INIT = "FOCALSAM_DIST_INIT"
ENV_RANKS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
DEFAULT_TIMEOUT_S = 1800.0
_COMM_MARKERS = ("gloo", "nccl", "processgroup", "connection closed by peer", "connection reset by peer")


class PeerError(RunError):
    """Another rank failed, or contact with it was lost: this rank stopped."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: what torchrun's agent and ``focalsam train --nproc`` send every rank when one fails
    (a KeyboardInterrupt, so a step in flight puts the weights back and the last checkpoint stays)."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler of a rank (see :class:`Terminated`)."""
    raise Terminated(f"signal {signal.Signals(signum).name}")


def per_rank_batch(global_batch: int, world: int) -> int:
    """``global_batch / world``; a one-line :class:`SetupError` when it does not divide."""
    if global_batch % world:
        lower, upper = global_batch // world * world, (global_batch // world + 1) * world
        near = f"{lower} or {upper}" if lower else str(upper)
        raise SetupError(
            f"--batch-size {global_batch} is the global batch and must divide evenly over "
            f"{world} processes (each takes batch-size / {world}); use a multiple of {world}, "
            f"e.g. {near}"
        )
    return global_batch // world


def is_comm_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed collective (a peer died or the group timed out)."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _COMM_MARKERS)


def one_line(exc: BaseException) -> str:
    """The gist of ``exc``'s message: its first line, without gloo's source-location prefix and
    advice (``[.../pair.cc:561] Connection closed by peer [127.0.0.1]:3484. This is ...``)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = re.sub(r"^\[[^\]]*\]\s*", "", line)
    return line.split(". ")[0].rstrip(".")


def step_forward(net: nn.Module, m_sharpness: bool) -> Callable[[Any], Any]:
    """``net``'s forward for the closure of one optimizer step.  Under DistributedDataParallel a
    forward arms the all-reduce of the backward that follows it; with ``m_sharpness`` the step's
    first forward (the one whose gradient sets eps) runs under ``no_sync``, so each rank perturbs
    with its own gradient and only the final gradient is all-reduced."""
    if not m_sharpness:
        return net
    calls = itertools.count()

    def forward(x: Any) -> Any:
        with net.no_sync() if next(calls) == 0 else nullcontext():
            return net(x)

    return forward


def merge_shards(parts: torch.Tensor, n: int) -> torch.Tensor:
    """``[N, k, m]`` per-rank values (rank ``r`` holds positions ``r, r + N, ...`` of ``range(n)``
    padded to ``N m`` by repeating its start: an unshuffled ``DistributedSampler``) -> ``[k, n]`` in
    data-set order, the padding dropped."""
    world, k, m = parts.shape
    return parts.permute(1, 2, 0).reshape(k, m * world)[:, :n]


@dataclass(frozen=True)
class Ranks:
    """This process's place: global rank and world size, rank and process count on this machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1


def env_ranks(environ: Mapping[str, str] | None = None) -> Ranks | None:
    """The launcher's :class:`Ranks` from ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE``
    (the local pair defaults to the global one: one machine); ``None`` when ``WORLD_SIZE`` is not
    set (not launched by torchrun or ``--nproc``)."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return None
    defaults = {"LOCAL_RANK": environ.get("RANK"), "LOCAL_WORLD_SIZE": environ["WORLD_SIZE"]}
    values = {}
    for name in ENV_RANKS:
        raw = environ.get(name, defaults.get(name))
        try:
            values[name] = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SetupError(
                f"environment variable {name}={raw!r} is not an integer; start the ranks with "
                "torchrun or `focalsam train --nproc N`"
            ) from None
    ranks = Ranks(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], values["LOCAL_WORLD_SIZE"])
    if not (0 <= ranks.rank < ranks.world and 0 <= ranks.local_rank < ranks.local_world <= ranks.world):
        raise SetupError(
            f"inconsistent launcher environment (RANK {ranks.rank}, WORLD_SIZE {ranks.world}, "
            f"LOCAL_RANK {ranks.local_rank}, LOCAL_WORLD_SIZE {ranks.local_world}); start the "
            "ranks with torchrun or `focalsam train --nproc N`"
        )
    return ranks


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """The device of this rank for the run's ``--device``: ``cuda:<local rank>`` on CUDA."""
    if device.type != "cuda" or ranks.world == 1:
        return device
    if device.index is not None and ranks.local_world > 1:
        raise SetupError(
            f"--device {device} names one GPU, but {ranks.local_world} processes run on this "
            "machine and each takes its own (cuda:<local rank>): pass --device cuda"
        )
    count = torch.cuda.device_count()
    if ranks.local_world > count:
        raise SetupError(
            f"{ranks.local_world} processes on this machine need {ranks.local_world} GPUs (one "
            f"each); it has {count}: start at most {count} processes per machine"
        )
    return torch.device("cuda", ranks.local_rank)


@dataclass(frozen=True)
class DistRun:
    """The distributed side of one run; ``DistRun()`` is a single process (every collective is then
    a no-op).  ``m_sharpness``: each rank perturbs with its own gradient (see docs/distributed.md)."""

    ranks: Ranks = Ranks()
    m_sharpness: bool = False

    @property
    def rank(self) -> int:
        """Global rank (0 writes every file)."""
        return self.ranks.rank

    @property
    def world(self) -> int:
        """Number of processes."""
        return self.ranks.world

    @property
    def main(self) -> bool:
        """Whether this is rank 0: the one that logs, owns the run folder and writes files."""
        return self.ranks.rank == 0

    @property
    def active(self) -> bool:
        """Whether a process group of more than one process is running."""
        return self.ranks.world > 1

    # ---------------------------------------------------------------------------- start and end
    @staticmethod
    def start(
        ranks: Ranks, device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S, m_sharpness: bool = False
    ) -> DistRun:
        """Join the process group from this rank's ``device`` (:func:`rank_device`; NCCL on CUDA,
        gloo on the CPU) with a ``timeout_s`` bound on every collective, and turn SIGTERM into
        :class:`Terminated`."""
        if not dist.is_available():
            raise SetupError("this torch build has no torch.distributed: run with one process")
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl" and not dist.is_nccl_available():
            raise SetupError("this torch build has no NCCL: several processes on CUDA need it")
        if backend == "gloo" and not dist.is_gloo_available():
            raise SetupError("this torch build has no gloo: several processes on the CPU need it")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        signal.signal(signal.SIGTERM, raise_terminated)
        try:
            dist.init_process_group(
                backend,
                init_method=os.environ.get(ENV_INIT, "env://"),
                rank=ranks.rank,
                world_size=ranks.world,
                timeout=timedelta(seconds=timeout_s),
            )
        except (RuntimeError, ValueError) as exc:
            raise SetupError(
                f"rank {ranks.rank} could not join the other {ranks.world - 1} process(es) "
                f"({backend}): {one_line(exc)}"
            ) from exc
        return DistRun(ranks, m_sharpness)

    def finish(self) -> None:
        """End of a run every rank completed: free what the run left (DDP's reducer holds gloo / NCCL
        work; destroyed later, during interpreter shutdown, it aborts the process), wait for all
        ranks, then leave the group."""
        if self.active and dist.is_initialized():
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()

    def abandon(self) -> None:
        """Leave the group at once after a failure (the peers' collectives then fail instead of
        waiting for this rank)."""
        if self.active and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # a group broken by the failure: leaving is all that is left to do
                pass

    # ---------------------------------------------------------------------------- collectives
    def agree(self, error: BaseException | None, out_dir: Path | None) -> Path | None:
        """Set-up outcome of every rank: raise ``error`` where it happened (a rank other than 0
        whose error reads as rank 0's raises :class:`PeerError` instead: rank 0 reports it), and
        :class:`PeerError` on the other ranks when any rank failed; else return rank 0's output
        folder."""
        if not self.active:
            if error is not None:
                raise error
            return out_dir
        said = None if error is None else f"{type(error).__name__}: {error}"
        outcomes: list[Any] = [None] * self.world
        dist.all_gather_object(outcomes, (said, None if out_dir is None else str(out_dir)))
        failed = [r for r, (msg, _) in enumerate(outcomes) if msg is not None]
        own = self.main or said != outcomes[0][0] or isinstance(error, KeyboardInterrupt)
        if error is not None and own:
            raise error
        if failed:
            raise PeerError(f"rank {failed[0]} could not start (its error is above); every rank stopped")
        return Path(outcomes[0][1])

    def sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Element-wise sums of ``values`` over the ranks (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def sync_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank: the model a rank
        evaluates is then the model rank 0 saves."""
        if self.active:
            for buf in module.buffers():
                dist.broadcast(buf, 0)

    def gather_predictions(
        self, preds: np.ndarray, targets: np.ndarray, n: int, device: torch.device
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and targets of the whole evaluation set in data-set order, from each rank's
        share under an unshuffled ``DistributedSampler`` (see :func:`merge_shards`)."""
        if not self.active:
            return preds, targets
        both = torch.stack(
            [torch.as_tensor(preds, dtype=torch.int64), torch.as_tensor(targets, dtype=torch.int64)]
        ).to(device)
        parts = [torch.empty_like(both) for _ in range(self.world)]
        dist.all_gather(parts, both)
        merged = merge_shards(torch.stack(parts).cpu(), n).numpy()
        return merged[0], merged[1]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in DistributedDataParallel (default bucketing, buffers broadcast from rank 0 at
        every forward); the model itself when single-process."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
