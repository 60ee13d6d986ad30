"""``focalsam``: train (one method or a side-by-side comparison), list presets, evaluate a checkpoint.

``focalsam train`` with no arguments runs Focal-SAM on the embedded long-tailed digits data on the
CPU (about half a minute) and prints the head/medium/tail table.  Explicit flags override a
``--preset``; ``--resume`` continues a run from its last complete epoch with its saved settings.

Exit codes: 0 success; 2 the run cannot start or continue (bad flag value, path, device, output
folder in use or holding a run, corrupted or foreign checkpoint, unreadable data, full disk): one
line on stderr ``focalsam: error: <what is wrong>; <what to do>``, checked before data and models
are built where possible; 130 interrupted (the last complete epoch is kept; the line says how to
resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..data import DATASETS, LongTailedData
from ..models import MODELS
from ..train import plots
from ..train.builders import build_data, build_run_model, check_runtime, preflight
from ..train.checkpoint import CHECKPOINT_NAME, check_compatible, checkpoint_config, load_checkpoint
from ..train.config import (
    AMP_MODES,
    LOSS_NAMES,
    METHODS,
    PRESETS,
    TrainConfig,
    resolve_config,
    validate_config,
)
from ..train.engine import RunResult, Trainer, cfg_summary, make_loader, set_threads
from ..train.errors import CheckpointError, RunError, RunFolderError
from ..train.files import atomic_write_text, probe_writable
from ..train.metrics import EvalResult, evaluate, group_table, per_class_table
from ..train.runfolder import RunFolder, held_run_message

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# flag -> config field (argparse dest); only flags given on the command line override
CONFIG_FLAGS = ("method", "loss", "drw", "model", "dataset", "data_root", "imbalance_ratio", "epochs",
                "batch_size", "lr", "momentum", "weight_decay", "rho", "rho_steps", "gamma", "lam",
                "amp", "seed", "device", "workers", "threads", "impl", "clip_weights", "max_steps",
                "tail_threshold", "ccsam_beta")


class UsageError(RunError):
    """Bad command-line input: reported as one line, exit code 2."""


def _err(msg: str) -> None:
    """One line on stderr (multi-line messages, e.g. from ``load_state_dict``, are joined)."""
    print(f"focalsam: error: {' '.join(msg.split())}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: one line on stderr and exit code 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        _err(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(EXIT_USAGE)


# ---------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``focalsam`` argument parser (sub-commands train, presets, eval)."""
    parser = OneLineParser(
        prog="focalsam", description="Focal-SAM and baselines for long-tailed classification.")
    sub = parser.add_subparsers(dest="command", metavar="{train,presets,eval}")
    sub.required = True

    train = sub.add_parser("train", help="train one method (or --compare several)",
                           description="Train; with no arguments: Focal-SAM on embedded digits (CPU).",
                           argument_default=argparse.SUPPRESS)
    d = TrainConfig()
    train.add_argument("--preset", help="named settings (see `focalsam presets`); flags override it")
    train.add_argument("--method", help=f"{' | '.join(METHODS)} (default {d.method})")
    train.add_argument("--loss", help=f"{' | '.join(LOSS_NAMES)} (default {d.loss})")
    train.add_argument("--drw", action="store_true",
                       help="deferred re-weighting from 80%% of the epochs (with ce/ldam/vs)")
    train.add_argument("--model", help=f"{' | '.join(MODELS)} (default {d.model})")
    train.add_argument("--dataset", help=f"{' | '.join(DATASETS)} (default {d.dataset})")
    train.add_argument("--data-root", help="data folder or archive (CIFAR, ImageNet-LT, iNat)")
    train.add_argument("--imbalance-ratio", type=float, help=f"IR (default {d.imbalance_ratio:g})")
    train.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    train.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    train.add_argument("--lr", type=float, help=f"initial lr, cosine per epoch (default {d.lr})")
    train.add_argument("--momentum", type=float, help=f"default {d.momentum}")
    train.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    train.add_argument("--rho", type=float, help=f"perturbation radius (default {d.rho})")
    train.add_argument("--rho-steps", type=float, nargs=2, metavar=("A", "B"),
                       help="rho A until 80%% of the epochs, then B")
    train.add_argument("--gamma", type=float, help=f"Focal-SAM gamma (default {d.gamma})")
    train.add_argument("--lam", type=float, help=f"Focal-SAM lambda (default {d.lam})")
    train.add_argument("--amp", help=f"{' | '.join(AMP_MODES)} (default {d.amp})")
    train.add_argument("--seed", type=int, help=f"default {d.seed}")
    train.add_argument("--device", help=f"cpu, cuda, cuda:1 ... (default {d.device})")
    train.add_argument("--workers", type=int, help=f"data-loader workers (default {d.workers})")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 for digits_cnn)")
    train.add_argument("--impl", help="SAM-family kernel implementation: auto, reference, foreach, cpp, "
                                      "cuda, triton (default auto; sgd ignores it)")
    train.add_argument("--clip-weights", help="local CLIP ViT-B/16 checkpoint for the clip_* models")
    train.add_argument("--max-steps", type=int, help="stop after N optimizer steps in all (smoke runs)")
    train.add_argument("--tail-threshold", type=float,
                       help="ImbSAM: classes with fewer training samples are tail "
                            "(default: the data set's tail group, 200 CIFAR-10, 20 CIFAR-100/ImageNet/iNat)")
    train.add_argument("--ccsam-beta", type=float, help="CC-SAM beta (default 0.3 for 10 classes, else 0.5)")
    train.add_argument("--out", help="output folder, owned by one run at a time "
                                     "(default: a new runs/<dataset>-<method>-<time>-<suffix>)")
    train.add_argument("--resume", nargs="?", const="", metavar="CHECKPOINT",
                       help=f"continue from CHECKPOINT (default <out>/{CHECKPOINT_NAME}) with its settings")
    train.add_argument("--compare", metavar="M1,M2,...",
                       help="train several methods on the same data and seed, print one table")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=cmd_presets)

    ev = sub.add_parser("eval", help="evaluate a checkpoint on the test set (and OOD sets)")
    ev.add_argument("checkpoint", help=f"a {CHECKPOINT_NAME} written by `focalsam train`")
    ev.add_argument("--data-root", help="data location, if it moved since training")
    ev.add_argument("--device", help="default: the training device if available, else cpu")
    ev.add_argument("--batch-size", type=int, help="default: the training batch size")
    ev.add_argument("--workers", type=int, help="data-loader workers")
    ev.add_argument("--amp", choices=AMP_MODES, help="autocast for evaluation")
    ev.add_argument("--ood-sketch", help="ImageNet-Sketch folder (<root>/<wnid>/*) for ImageNet-LT models")
    ev.add_argument("--ood-v2", help="ImageNetV2 folder (<root>/<class index>/*) for ImageNet-LT models")
    ev.add_argument("--ood-c", help="ImageNet-C folder (<root>/<corruption>/<severity>/<wnid>/*)")
    ev.add_argument("--out", help="folder for eval.json (default: the checkpoint's folder); checked "
                                  "for writing before evaluating")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``focalsam`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RunError, OSError) as exc:  # OSError: unreadable data (the data package's errors are OSErrors)
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:  # during setup or evaluation; training handles its own
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# ---------------------------------------------------------------------------------------- train
def _progress(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "no_progress", False) else None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _resolve(args: argparse.Namespace) -> tuple[TrainConfig, Path | None, Path | None]:
    """Config, output folder (``None``: a new default one) and checkpoint to resume from (if any)."""
    given = vars(args)
    overrides = {k: given[k] for k in CONFIG_FLAGS if k in given}
    if "rho_steps" in overrides:
        overrides["rho_steps"] = list(overrides["rho_steps"])
    base, resume = None, None
    out = Path(given["out"]) if "out" in given else None
    if "resume" in given:
        if "compare" in given:
            raise UsageError("--resume continues one run; resume each method of a --compare run "
                             "with --out <out>/<method> --resume")
        if given["resume"]:
            resume = Path(given["resume"])
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


def _resume_hint(out: Path, epochs: int) -> str:
    """Where the last complete epoch is and how to continue (or that nothing was saved)."""
    ckpt = out / CHECKPOINT_NAME
    if not ckpt.exists():
        return "no epoch was completed, so no checkpoint was written"
    try:
        done = load_checkpoint(ckpt)["epoch"]
    except CheckpointError as exc:
        return str(exc)
    return (f"the last complete epoch ({done}/{epochs}) is saved in {ckpt}; "
            f"continue with: focalsam train --out {out} --resume")


def _run(cfg: TrainConfig, out: Path | None, resume: Path | None, progress: bool | None,
         data: LongTailedData | None = None) -> RunResult | None:
    """Build and train one run; ``None`` when interrupted (the message says how to resume)."""
    trainer = Trainer(cfg, out, resume=resume, log=_log, progress=progress, data=data)
    out = trainer.out_dir
    if resume is not None:
        _log(f"resuming {cfg_summary(cfg)} from {resume} after epoch {trainer.start_epoch}/{cfg.epochs}")
    else:
        _log(f"training {cfg_summary(cfg)} for {cfg.epochs} epochs on {trainer.device} -> {out}")
    try:
        return trainer.run()
    except KeyboardInterrupt:
        hint = _resume_hint(out, cfg.epochs)
        _log(f"\ninterrupted: {hint}")
        return None
    except (RunError, OSError) as exc:  # e.g. a full disk, unreadable data
        raise RunError(f"{exc}; {_resume_hint(out, cfg.epochs)}") from exc


def cmd_train(args: argparse.Namespace) -> int:
    """``focalsam train``."""
    cfg, out, resume = _resolve(args)
    progress = _progress(args)
    if "compare" in vars(args):
        return _compare(cfg, out, _compare_methods(args.compare), progress)
    result = _run(cfg, out, resume, progress)
    if result is None:
        return EXIT_INTERRUPTED
    print(summary(result))
    return 0


def _compare(cfg: TrainConfig, out: Path | None, methods: list[str], progress: bool | None) -> int:
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
            run = _run(dataclasses.replace(cfg, method=method), out / method, None, progress, data)
            if run is None:
                return EXIT_INTERRUPTED
            results[method] = run
        first = next(iter(results.values()))
        table = group_table({m: r.final for m, r in results.items()}, first.groups)
        times = "train time s      " + "".join(
            f"{r.seconds:>{max(9, *(len(m) for m in results)) + 2}.1f}" for r in results.values())
        text = (f"{cfg.dataset} ({len(first.class_counts)} classes, IR {cfg.imbalance_ratio:g}), "
                f"{cfg.model}, {cfg.loss} loss, {cfg.epochs} epochs, seed {cfg.seed}\n{table}\n{times}")
        atomic_write_text(text + "\n", out / "compare.txt")
        atomic_write_text(json.dumps({m: {"final": r.final.to_dict(), "train_seconds": r.seconds,
                                          "details": r.details} for m, r in results.items()}, indent=2)
                          + "\n", out / "compare.json")
        plots.per_class_plot({m: r.final.per_class for m, r in results.items()}, first.class_counts,
                             first.groups, out / "per_class_accuracy.png")
    print(text)
    print(f"outputs: {out}/compare.txt, compare.json, per_class_accuracy.png, <method>/...")
    return 0


def summary(run: RunResult) -> str:
    """The one-screen summary printed at the end of ``focalsam train``."""
    cfg = run.config
    steps = run.history[-1]["global_step"] if run.history else 0
    details = ", ".join(f"{k} {v:g}" for k, v in run.details.items())
    n_train = sum(run.class_counts)
    lines = [
        f"{cfg_summary(cfg)}: {len(run.class_counts)} classes, {n_train} training images "
        f"(counts {min(run.class_counts)}..{max(run.class_counts)}), {run.final.samples} test images",
        f"{len(run.history)}/{cfg.epochs} epochs, {steps} steps, {run.seconds:.1f} s; lr {cfg.lr:g} cosine, "
        f"batch {cfg.batch_size}, wd {cfg.weight_decay:g}" + (f"; {details}" if details else ""),
        "",
        group_table({cfg.method: run.final}, run.groups),
    ]
    if len(run.class_counts) <= 20:
        lines += ["", per_class_table(run.final, run.class_counts, run.class_names, run.groups)]
    lines += ["", f"outputs in {run.out_dir}: config.json metrics.jsonl final.json final.txt "
                  f"per_class_accuracy.png training_curves.png {CHECKPOINT_NAME}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- presets
def cmd_presets(args: argparse.Namespace) -> int:
    """``focalsam presets``: name, description and the values each preset sets."""
    for name, preset in PRESETS.items():
        print(f"{name:<22} {preset.description}")
        if preset.values:
            print(" " * 23 + ", ".join(f"{k}={v}" for k, v in preset.values.items()))
    print("\nall presets: method focalsam, loss la, SGD momentum 0.9, seed 0 unless overridden; "
          "use: focalsam train --preset NAME [flags]")
    return 0


# ---------------------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    """``focalsam eval CHECKPOINT``: test-set table (and OOD sets for ImageNet-LT models)."""
    import torch

    ckpt = load_checkpoint(args.checkpoint)
    cfg = checkpoint_config(ckpt, args.checkpoint)
    changes: dict[str, Any] = {k: getattr(args, k) for k in ("data_root", "batch_size", "workers", "amp")
                               if getattr(args, k) is not None}
    if args.device is not None:
        changes["device"] = args.device
    elif cfg.device.startswith("cuda") and not torch.cuda.is_available():
        changes["device"] = "cpu"
    cfg = dataclasses.replace(cfg, **changes)
    try:
        validate_config(cfg)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    device = check_runtime(cfg, training=False)
    ood = {k: v for k, v in (("sketch", args.ood_sketch), ("v2", args.ood_v2), ("c", args.ood_c)) if v}
    if ood and cfg.dataset != "imagenet_lt":
        raise UsageError(f"OOD sets are for ImageNet-LT models; this checkpoint was trained on {cfg.dataset}")
    for name, path in ood.items():
        if not Path(path).is_dir():
            raise UsageError(f"--ood-{name} folder {path} not found: download the set and extract it there")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    probe_writable(out)  # before evaluating: the report must have somewhere to go
    preflight(cfg, needs_weights=False)
    set_threads(cfg, device)
    data = build_data(cfg)
    check_compatible(ckpt, args.checkpoint, cfg.model, data.num_classes, data.class_counts)
    model = build_run_model(cfg, data, from_checkpoint=True)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {args.checkpoint} does not fit {cfg.model}: {exc}") from exc
    model.to(device)
    progress = _progress(args)
    result = evaluate(model, make_loader(data.test, cfg, False, None, device), data.num_classes,
                      data.groups, device, cfg.amp, progress)
    report: dict[str, Any] = {"checkpoint": str(args.checkpoint), "epoch": ckpt["epoch"],
                              "test": result.to_dict()}
    print(f"{cfg_summary(cfg)}, checkpoint after epoch {ckpt['epoch']}/{cfg.epochs}\n")
    print(group_table({cfg.method: result}, data.groups))
    if data.num_classes <= 20:
        print("\n" + per_class_table(result, data.class_counts, data.class_names, data.groups))
    if ood:
        report["ood"] = _eval_ood(model, cfg, data, ood, device, progress)
    atomic_write_text(json.dumps(report, indent=2) + "\n", out / "eval.json")
    print(f"\nwritten: {out / 'eval.json'}")
    return 0


def _eval_ood(model: Any, cfg: TrainConfig, data: Any, ood: dict[str, str], device: Any,
              progress: bool | None) -> dict[str, Any]:
    """Top-1 on ImageNet-Sketch / ImageNetV2 and CE/mCE on ImageNet-C."""
    from ..data import OOD_COUNTS, ClassFolderDataset, corruption_errors, imagenet_c_sets

    transform = data.test.transform
    report: dict[str, Any] = {}

    def top1(dataset: Any) -> EvalResult:
        loader = make_loader(dataset, cfg, False, None, device)
        return evaluate(model, loader, data.num_classes, data.groups, device, cfg.amp, progress)

    for name, label in (("sketch", "ImageNet-Sketch"), ("v2", "ImageNetV2")):
        if name in ood:
            res = top1(ClassFolderDataset(ood[name], transform, expected=OOD_COUNTS[name]))
            report[name] = res.to_dict()
            print(f"{label} top-1: {100 * res.overall:.2f}%")
    if "c" in ood:
        accs: dict[str, list[float]] = {}
        for corruption, _, dataset in imagenet_c_sets(ood["c"], transform):
            accs.setdefault(corruption, []).append(top1(dataset).overall)
        summary_c = corruption_errors(accs)
        report["c"] = {"accuracy": accs, **summary_c}
        print(f"ImageNet-C mean top-1 {100 * summary_c['mean_acc']:.2f}%, mCE {100 * summary_c['mCE']:.1f}")
    return report
