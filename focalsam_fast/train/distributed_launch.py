"""``focalsam train --nproc N``: start N ranks of one run on this machine and watch them.

Each rank is ``python -m focalsam_fast.cli train <the same flags>`` with torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``), so a rank runs exactly what
``torchrun --nproc_per_node N -m focalsam_fast.cli train ...`` runs.  The one difference is the
rendezvous: a ``file://`` FileStore in a private temporary folder (``FOCALSAM_DIST_INIT``) instead
of a TCP store on a port, so there is no port to choose, none to collide with and no store thread.

Why plain subprocesses and not torch's elastic agent or ``mp.spawn``: the ranks are the ordinary
command (one code path with torchrun), their output goes straight to the terminal (rank 0's bar
sees it), failures keep the CLI's one-line contract instead of a traceback table, and the whole
policy is the few lines below:

* a rank that ends with a non-zero code stops every other rank: they get ``SETTLE_S`` to notice
  (gloo fails their next collective at once, so they report with their own message), then
  SIGTERM, then SIGKILL after ``grace_s``; the launcher returns that first code;
* Ctrl-C reaches every rank from the terminal (one process group), each stops cleanly (rank 0
  keeps the last complete checkpoint and prints the resume command); ranks that did not get the
  signal are sent SIGINT, then stopped as above; a second Ctrl-C kills them at once;
* SIGTERM to the launcher stops the ranks the same way.

This module imports no torch (``focalsam --help`` stays fast); :func:`add_launch_flags` adds the
launch-time flags to the ``train`` parser.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

ENV_INIT = "FOCALSAM_DIST_INIT"  # the value of distributed.ENV_INIT (a test keeps them equal)
DEFAULT_TIMEOUT_S = 1800.0  # the value of distributed.DEFAULT_TIMEOUT_S (a test keeps them equal)
GRACE_S = 15.0
SETTLE_S = 3.0
POLL_S = 0.05
HANDLED_EXITS = (0, 2, 130)  # codes whose rank printed its own message (focalsam's exit codes)


def add_launch_flags(train: argparse.ArgumentParser) -> None:
    """``--nproc``, ``--m-sharpness`` and ``--dist-timeout`` (how the run is launched; not stored
    in the run's config)."""
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes of this machine (DistributedDataParallel; gloo on the CPU, "
        "NCCL on CUDA: one GPU each); --batch-size stays the global batch and must "
        "divide by N; the same as torchrun --nproc_per_node N -m focalsam_fast.cli train",
    )
    train.add_argument(
        "--m-sharpness",
        action="store_true",
        help="several processes: each perturbs with its own batch's gradient (the SAM "
        "paper's m-sharpness, m = per-process batch; 1 all-reduce per step) instead of "
        "the global batch's (the default, exact: 2 all-reduces); kept on --resume",
    )
    train.add_argument(
        "--dist-timeout",
        type=float,
        metavar="SECONDS",
        help="several processes: the longest any process waits for the others "
        f"(default {DEFAULT_TIMEOUT_S:g})",
    )


def rebuild_argv(
    parser: argparse.ArgumentParser, args: argparse.Namespace, drop: Sequence[str] = ()
) -> list[str]:
    """The command-line flags that give ``args`` back when parsed by ``parser`` (a parser whose
    ``argument_default`` is SUPPRESS, so ``args`` holds only the flags given), less ``drop``."""
    given = vars(args)
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest not in given or action.dest in drop:
            continue
        value, flag = given[action.dest], action.option_strings[-1]
        if action.nargs == 0:  # store_true / store_const
            if value == action.const:
                argv.append(flag)
        elif action.nargs == "?" and value == action.const:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv.append(f"{flag}={value}")  # '=' keeps values that start with '-' as values
    return argv


def rank_env(rank: int, nproc: int, init: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of rank ``rank`` of ``nproc`` on one machine (torchrun's variables)."""
    env = dict(os.environ if base is None else base)
    env.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nproc))
    env[ENV_INIT] = init
    return env


def _stop(procs: Sequence[subprocess.Popen], grace_s: float, first: signal.Signals = signal.SIGTERM) -> None:
    """Send ``first`` to every running rank, SIGKILL what is left after ``grace_s`` (at once on a
    further Ctrl-C), and reap them all."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(first)
    _let_finish(procs, grace_s)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _describe(rank: int, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"rank {rank} was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"rank {rank} exited with code {code} (its error is above)"


def _report(rank: int, code: int) -> int:
    """Print a line for a rank that ended without its own message; the launcher's exit code."""
    if code not in HANDLED_EXITS:
        print(
            f"focalsam: error: {_describe(rank, code)}; every other rank was stopped",
            file=sys.stderr,
            flush=True,
        )
        return 2
    return code


def _watch(procs: Sequence[subprocess.Popen], grace_s: float) -> int:
    """Wait for the ranks; the first non-zero exit stops the others."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            rank, code = failed[0]
            _let_finish(procs, min(SETTLE_S, grace_s))
            _stop(procs, grace_s)
            return _report(rank, code)
        if all(c == 0 for c in codes):
            return 0
        time.sleep(POLL_S)


def launch(
    command: Sequence[str],
    nproc: int,
    grace_s: float = GRACE_S,
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | None = None,
) -> int:
    """Run ``command`` as ranks ``0..nproc-1`` of one run (see the module docstring); returns the
    exit code: 0 when every rank succeeded, else the first failing rank's (130: interrupted).
    ``env``: the ranks' base environment (default this process's); ``output``: a file that gets
    the ranks' stdout and stderr (default: this process's, e.g. the terminal)."""
    with tempfile.TemporaryDirectory(prefix="focalsam-ranks-") as tmp:
        init = Path(tmp, "store").as_uri()
        previous = signal.getsignal(signal.SIGTERM)
        procs: list[subprocess.Popen] = []

        def terminated(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, terminated)
        try:
            for rank in range(nproc):
                procs.append(
                    subprocess.Popen(
                        list(command), env=rank_env(rank, nproc, init, env), stdout=output, stderr=output
                    )
                )
            return _watch(procs, grace_s)
        except KeyboardInterrupt:  # Ctrl-C: the ranks got it too (same process group) and stop cleanly
            _let_finish(procs, min(2.0, grace_s))
            _stop(procs, grace_s, signal.SIGINT)
            return 130
        finally:
            _stop(procs, grace_s)
            signal.signal(signal.SIGTERM, previous)


def _let_finish(procs: Sequence[subprocess.Popen], seconds: float) -> None:
    """Give the ranks ``seconds`` to end on their own (a further Ctrl-C cuts it short)."""
    deadline = time.monotonic() + seconds
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        pass
