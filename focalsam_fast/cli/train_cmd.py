"""``focalsam train``: one run, a resumed run, or a ``--compare`` of several methods; on N processes
with ``--nproc N`` (this process launches the ranks) or as one rank started by torchrun /
``--nproc`` (``WORLD_SIZE`` in the environment, see :mod:`focalsam_fast.train.distributed`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..data import LongTailedData
from ..train import plots
from ..train.builders import build_data, check_runtime, preflight
from ..train.checkpoint import CHECKPOINT_NAME, checkpoint_config, load_checkpoint
from ..train.config import CONFIG_PATH_FIELDS, METHODS, TrainConfig, resolve_config
from ..train.distributed import (
    DEFAULT_TIMEOUT_S,
    DistRun,
    PeerError,
    Ranks,
    Terminated,
    env_ranks,
    rank_device,
)
from ..train.distributed_launch import launch, rebuild_argv
from ..train.engine import RunResult, Trainer, cfg_summary, check_distributed
from ..train.errors import CheckpointError, RunError, RunFolderError
from ..train.files import atomic_write_text
from ..train.metrics import group_table, per_class_table
from ..train.progress import DEFAULT_EVERY_S
from ..train.runfolder import RunFolder, held_run_message
from .main import EXIT_INTERRUPTED, EXIT_USAGE, UsageError

# flag -> config field (argparse dest); only flags given on the command line override
CONFIG_FLAGS = (
    "method",
    "loss",
    "drw",
    "model",
    "dataset",
    "data_root",
    "imbalance_ratio",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "rho",
    "rho_steps",
    "gamma",
    "lam",
    "amp",
    "prec",
    "seed",
    "device",
    "workers",
    "threads",
    "impl",
    "clip_weights",
    "class_names",
    "allow_folder_names",
    "max_steps",
    "train_fraction",
    "max_train_samples",
    "max_steps_per_epoch",
    "tail_threshold",
    "ccsam_beta",
    "ccsam_perturb",
    "imbsam_tail_weight",
    "vs_gamma",
    "vs_tau",
    "group_thresholds",
)

Log = Callable[[str], None]


def absolute(path: str) -> str:
    """``path`` made absolute against the current folder (``~`` expanded, symbolic links kept)."""
    return os.path.abspath(os.path.expanduser(path))


def progress_setting(args: argparse.Namespace) -> bool | None:
    """``False`` with ``--no-progress`` or ``--quiet``, else ``None`` (a bar on a terminal, else lines)."""
    return False if getattr(args, "no_progress", False) or getattr(args, "quiet", False) else None


def logger(args: argparse.Namespace) -> Log:
    """Lines to stderr, or nothing with ``--quiet``."""
    if getattr(args, "quiet", False):
        return lambda msg: None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def _resolve(args: argparse.Namespace) -> tuple[TrainConfig, Path | None, Path | None]:
    """Config, output folder (``None``: a new default one) and checkpoint to resume from (if any).
    Every path is made absolute here, so the stored config works from any folder."""
    given = vars(args)
    overrides = {k: given[k] for k in CONFIG_FLAGS if k in given}
    for name in ("rho_steps", "group_thresholds"):
        if name in overrides:
            overrides[name] = list(overrides[name])
    for name in CONFIG_PATH_FIELDS:
        if overrides.get(name) is not None:
            overrides[name] = absolute(overrides[name])
    base, resume = None, None
    out = Path(absolute(given["out"])) if "out" in given else None
    if "resume" in given:
        if "compare" in given:
            raise UsageError(
                "--resume continues one run; resume each method of a --compare run "
                "with --out <out>/<method> --resume"
            )
        if given["resume"]:
            resume = Path(absolute(given["resume"]))
            out = out or resume.parent
        elif out is None:
            raise UsageError("--resume needs --out DIR (the run's folder) or a checkpoint path")
        else:
            resume = out / CHECKPOINT_NAME
        base = checkpoint_config(load_checkpoint(resume), resume)
    try:
        cfg = resolve_config(given.get("preset"), overrides, base)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return cfg, out, resume


def _compare_methods(spec: str) -> list[str]:
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UsageError(f"unknown method(s) {bad or spec!r} in --compare; valid: {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise UsageError(f"--compare lists a method twice: {spec}")
    return methods


def _resume_hint(out: Path, epochs: int, dist: DistRun | None = None) -> str:
    """Where the last complete epoch is and how to continue (or that nothing was saved)."""
    ckpt = out / CHECKPOINT_NAME
    if not ckpt.exists():
        return "no epoch was completed, so no checkpoint was written"
    try:
        done = load_checkpoint(ckpt)["epoch"]
    except CheckpointError as exc:
        return str(exc)
    launch_flags = (
        ""
        if dist is None or not dist.active
        else (f" --nproc {dist.world}" + (" --m-sharpness" if dist.m_sharpness else ""))
    )
    return (
        f"the last complete epoch ({done}/{epochs}) is saved in {ckpt}; "
        f"continue with: focalsam train --out {out} --resume{launch_flags}"
    )


def _run(
    cfg: TrainConfig,
    out: Path | None,
    resume: Path | None,
    args: argparse.Namespace,
    data: LongTailedData | None = None,
    dist: DistRun | None = None,
) -> RunResult | None:
    """Build and train one run (or this rank's part of it); ``None`` when interrupted (rank 0's
    message says how to resume)."""
    dist = dist if dist is not None else DistRun()
    log = logger(args) if dist.main else logger(argparse.Namespace(quiet=True))
    trainer = Trainer(
        cfg,
        out,
        resume=resume,
        log=log,
        progress=progress_setting(args),
        data=data,
        progress_every_s=getattr(args, "progress_every", DEFAULT_EVERY_S),
        dist=dist,
    )
    out = trainer.out_dir
    where = f"{trainer.device} ({trainer.threads} CPU thread{'s' if trainer.threads != 1 else ''})"
    if dist.active:
        sharp = ", per-process perturbation (--m-sharpness)" if dist.m_sharpness else ""
        where += (
            f" x {dist.world} processes (global batch {cfg.batch_size}, {trainer.rank_batch} per "
            f"process{sharp})"
        )
    if resume is not None:
        log(
            f"resuming {cfg_summary(cfg)} from {resume} after epoch {trainer.start_epoch}/{cfg.epochs} "
            f"on {where}"
        )
    else:
        log(f"training {cfg_summary(cfg)} for {cfg.epochs} epochs on {where} -> {out}")
    for note in trainer.short_run:
        log(f"short run, not the paper's setting: {note}")
    log(f"head/medium/tail groups: {trainer.data.thresholds.describe()}")
    try:
        return trainer.run()
    except KeyboardInterrupt as exc:
        if dist.main:
            what = (
                "stopped by SIGTERM (torchrun and --nproc stop every process when one fails: see its error)"
                if isinstance(exc, Terminated)
                else "interrupted"
            )
            print(f"\n{what}: {_resume_hint(out, cfg.epochs, dist)}", file=sys.stderr, flush=True)
        return None
    except (RunError, OSError) as exc:  # e.g. a full disk, unreadable data
        if not dist.main:
            raise
        raise RunError(f"{exc}; {_resume_hint(out, cfg.epochs, dist)}") from exc


def cmd_train(args: argparse.Namespace) -> int:
    """``focalsam train``."""
    every = getattr(args, "progress_every", DEFAULT_EVERY_S)
    if not every >= 0:  # also refuses nan
        raise UsageError(f"--progress-every must be a number of seconds >= 0, got {every:g}")
    nproc, ranks = getattr(args, "nproc", None), env_ranks()
    if nproc is not None and nproc < 1:
        raise UsageError(f"--nproc must be an integer >= 1, got {nproc}")
    if nproc is not None and ranks is not None:
        raise UsageError(
            f"--nproc starts the processes itself, but this process is rank {ranks.rank} of "
            f"{ranks.world} already (torchrun): leave --nproc out"
        )
    timeout = getattr(args, "dist_timeout", DEFAULT_TIMEOUT_S)
    if not (math.isfinite(timeout) and timeout > 0):
        raise UsageError(f"--dist-timeout must be a finite number of seconds > 0, got {timeout:g}")
    m_sharpness = getattr(args, "m_sharpness", False)
    cfg, out, resume = _resolve(args)
    world = nproc if nproc is not None else 1 if ranks is None else ranks.world
    methods = _compare_methods(args.compare) if "compare" in vars(args) else [cfg.method]
    if cfg.ccsam_perturb != "head" and "ccsam" not in methods:
        raise UsageError(
            f"--ccsam-perturb {cfg.ccsam_perturb} sets what CC-SAM perturbs, but this run trains "
            f"{', '.join(methods)} (add ccsam, or drop the flag)"
        )
    if "compare" in vars(args):
        if world > 1 or m_sharpness:
            raise UsageError(
                "--compare trains the methods one after another in one process; train each "
                "on several with --nproc N --out <out>/<method>"
            )
        return _compare(cfg, out, methods, args)
    if nproc is not None and nproc > 1:
        return _launch(cfg, args, nproc, m_sharpness)
    if ranks is not None and ranks.world > 1:
        return _rank(cfg, out, resume, args, ranks, timeout, m_sharpness)
    result = _run(cfg, out, resume, args, dist=DistRun(m_sharpness=m_sharpness))
    if result is None:
        return EXIT_INTERRUPTED
    print(summary(result))
    return 0


def _train_parser() -> argparse.ArgumentParser:
    """The ``focalsam train`` sub-parser."""
    from .main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _launch(cfg: TrainConfig, args: argparse.Namespace, nproc: int, m_sharpness: bool) -> int:
    """``--nproc N``: check here what every rank would refuse (global batch, method, device, paths),
    then start the N ranks with the same flags (:mod:`~focalsam_fast.train.distributed_launch`)."""
    ranks = Ranks(0, nproc, 0, nproc)
    check_distributed(cfg, DistRun(ranks, m_sharpness))
    rank_device(check_runtime(cfg), ranks)
    preflight(cfg)
    argv = rebuild_argv(_train_parser(), args, drop=("nproc",))
    return launch([sys.executable, "-m", "focalsam_fast.cli", "train", *argv], nproc)


def _rank(
    cfg: TrainConfig,
    out: Path | None,
    resume: Path | None,
    args: argparse.Namespace,
    ranks: Ranks,
    timeout: float,
    m_sharpness: bool,
) -> int:
    """One rank of an N-process run: join the group, train, leave the group (after waiting for every
    rank when all went well, at once after a failure so that no peer waits on this one).  Rank 0
    reports; another rank reports only an error of its own, prefixed with its rank."""
    dist = DistRun.start(ranks, rank_device(check_runtime(cfg), ranks), timeout, m_sharpness)
    try:
        result = _run(cfg, out, resume, args, dist=dist)
    except PeerError:
        dist.abandon()
        if dist.main:
            raise
        return EXIT_USAGE
    except RunError as exc:
        dist.abandon()
        if dist.main:
            raise
        raise RunError(f"rank {ranks.rank}: {exc}") from exc
    except BaseException:
        dist.abandon()
        raise
    if result is None:
        dist.abandon()
        return EXIT_INTERRUPTED
    dist.finish()
    if dist.main:
        print(summary(result))
    return 0


def _compare(cfg: TrainConfig, out: Path | None, methods: list[str], args: argparse.Namespace) -> int:
    for method in methods:
        check_runtime(dataclasses.replace(cfg, method=method))
    preflight(cfg)
    folder = RunFolder.claim_new(f"{cfg.dataset}-compare") if out is None else RunFolder.claim(out)
    with folder:
        out = folder.path
        for method in methods:
            if (out / method / CHECKPOINT_NAME).exists():
                raise RunFolderError(held_run_message(out / method))
        results: dict[str, RunResult] = {}
        data = build_data(cfg)  # loaded once, shared by every method
        for method in methods:
            run = _run(dataclasses.replace(cfg, method=method), out / method, None, args, data)
            if run is None:
                return EXIT_INTERRUPTED
            results[method] = run
        first = next(iter(results.values()))
        table = group_table({m: r.final for m, r in results.items()}, first.groups)
        times = "train time s      " + "".join(
            f"{r.seconds:>{max(9, *(len(m) for m in results)) + 2}.1f}" for r in results.values()
        )
        text = (
            f"{cfg.dataset} ({len(first.class_counts)} classes, IR {cfg.imbalance_ratio:g}), "
            f"{cfg.model}, {cfg.loss} loss, {cfg.epochs} epochs, seed {cfg.seed}\n{table}\n{times}"
            + "".join(f"\nshort run, not the paper's setting: {note}" for note in first.notes)
        )
        atomic_write_text(text + "\n", out / "compare.txt")
        atomic_write_text(
            json.dumps(
                {
                    m: {"final": r.final.to_dict(), "train_seconds": r.seconds, "details": r.details}
                    for m, r in results.items()
                },
                indent=2,
            )
            + "\n",
            out / "compare.json",
        )
        plots.per_class_plot(
            {m: r.final.per_class for m, r in results.items()},
            first.class_counts,
            first.groups,
            out / "per_class_accuracy.png",
        )
    print(text)
    print(f"outputs: {out}/compare.txt, compare.json, per_class_accuracy.png, <method>/...")
    return 0


def summary(run: RunResult) -> str:
    """The one-screen summary printed at the end of ``focalsam train``."""
    cfg = run.config
    steps = run.history[-1]["global_step"] if run.history else 0
    details = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in run.details.items())
    n_train = sum(run.class_counts)
    used = "" if run.train_size in (0, n_train) else f", {run.train_size} of them used"
    lines = [
        f"{cfg_summary(cfg)}: {len(run.class_counts)} classes, {n_train} training images "
        f"(counts {min(run.class_counts)}..{max(run.class_counts)}){used}, {run.final.samples} test images",
        f"{len(run.history)}/{cfg.epochs} epochs, {steps} steps, {run.seconds:.1f} s; lr {cfg.lr:g} cosine, "
        f"batch {cfg.batch_size}, wd {cfg.weight_decay:g}" + (f"; {details}" if details else ""),
    ]
    lines += [f"short run, not the paper's setting: {note}" for note in run.notes]
    lines += ["", group_table({cfg.method: run.final}, run.groups)]
    if len(run.class_counts) <= 20:
        lines += ["", per_class_table(run.final, run.class_counts, run.class_names, run.groups)]
    lines += [
        "",
        f"outputs in {run.out_dir}: config.json metrics.jsonl final.json final.txt "
        f"per_class_accuracy.png training_curves.png {CHECKPOINT_NAME}",
    ]
    return "\n".join(lines)
