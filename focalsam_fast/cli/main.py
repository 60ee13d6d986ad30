"""``focalsam``: train (one method or a side-by-side comparison), list presets, evaluate a checkpoint,
analyze its Hessian per class group.

``focalsam train`` with no arguments runs Focal-SAM on the embedded long-tailed digits data on the
CPU (about half a minute) and prints the head/medium/tail table.  Explicit flags override a
``--preset``; ``--resume`` continues a run from its last complete epoch with its saved settings.

Exit codes: 0 success; 2 the run cannot start or continue (bad flag value, path, device, output
folder in use or holding a run, corrupted or foreign checkpoint, unreadable data, full disk): one
line on stderr ``focalsam: error: <what is wrong>; <what to do>``, checked before data and models
are built where possible; 130 interrupted (the last complete epoch is kept; the line says how to
resume).

This module imports no torch: ``focalsam --help`` and argument errors answer at once.  Each
sub-command's body lives in its own module (:mod:`.train_cmd`, :mod:`.eval_cmd`), imported when
that sub-command runs.  A sub-command is one function in :data:`SUBCOMMANDS` adding its parser
and setting ``func`` (a callable taking the parsed arguments and returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..train.config import (
    AMP_MODES,
    DATASET_NAMES,
    IMPL_NAMES,
    LOSS_NAMES,
    METHODS,
    MODEL_NAMES,
    PRECISIONS,
    PRESETS,
    TrainConfig,
)
from ..train.distributed_launch import add_launch_flags
from ..train.errors import RunError
from ..train.files import CHECKPOINT_NAME

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_PROGRESS_EVERY_S = 30.0  # the value of train.progress.DEFAULT_EVERY_S (a test keeps them equal)


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


def lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """``focalsam_fast.cli.<module>.<name>``, imported when called (heavy imports wait for the
    sub-command that needs them)."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(args)

    return run


# ---------------------------------------------------------------------------------------- parsers
def add_train(sub: Any) -> None:
    """``focalsam train``."""
    train = sub.add_parser(
        "train",
        help="train one method (or --compare several)",
        description="Train; with no arguments: Focal-SAM on embedded digits (CPU).",
        argument_default=argparse.SUPPRESS,
    )
    d = TrainConfig()
    train.add_argument("--preset", help="named settings (see `focalsam presets`); flags override it")
    train.add_argument("--method", help=f"{' | '.join(METHODS)} (default {d.method})")
    train.add_argument("--loss", help=f"{' | '.join(LOSS_NAMES)} (default {d.loss})")
    train.add_argument(
        "--drw", action="store_true", help="deferred re-weighting from 80%% of the epochs (with ce/ldam/vs)"
    )
    train.add_argument("--model", help=f"{' | '.join(MODEL_NAMES)} (default {d.model})")
    train.add_argument("--dataset", help=f"{' | '.join(DATASET_NAMES)} (default {d.dataset})")
    train.add_argument(
        "--data-root",
        help="data folder or archive (CIFAR, ImageNet-LT, iNat); stored as an "
        "absolute path, so eval and --resume work from any folder",
    )
    train.add_argument("--imbalance-ratio", type=float, help=f"IR (default {d.imbalance_ratio:g})")
    train.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    train.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    train.add_argument("--lr", type=float, help=f"initial lr, cosine per epoch (default {d.lr})")
    train.add_argument("--momentum", type=float, help=f"default {d.momentum}")
    train.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    train.add_argument("--rho", type=float, help=f"perturbation radius (default {d.rho})")
    train.add_argument(
        "--rho-steps", type=float, nargs=2, metavar=("A", "B"), help="rho A until 80%% of the epochs, then B"
    )
    train.add_argument("--gamma", type=float, help=f"Focal-SAM gamma (default {d.gamma})")
    train.add_argument("--lam", type=float, help=f"Focal-SAM lambda (default {d.lam})")
    train.add_argument("--amp", help=f"{' | '.join(AMP_MODES)} (default {d.amp})")
    train.add_argument(
        "--prec",
        help=f"CLIP training precision {' | '.join(PRECISIONS)}: fp16 = pure fp16 "
        "weights and optimizer state, amp = fp16 autocast + GradScaler (CUDA) "
        f"(default {d.prec}; the CLIP presets set the released value)",
    )
    train.add_argument("--seed", type=int, help=f"default {d.seed}")
    train.add_argument("--device", help=f"cpu, cuda, cuda:1 ... (default {d.device})")
    train.add_argument("--workers", type=int, help=f"data-loader workers (default {d.workers})")
    train.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: the physical cores this process may use, i.e. "
        "min(physical cores, CPUs in its affinity mask); 1 for digits_cnn on the CPU); "
        "the run header says how many are used",
    )
    train.add_argument(
        "--impl",
        help=f"SAM-family kernel implementation: {', '.join(IMPL_NAMES)} (default auto; sgd ignores it)",
    )
    train.add_argument("--clip-weights", help="local CLIP ViT-B/16 checkpoint for the clip_* models")
    train.add_argument(
        "--class-names",
        metavar="FILE",
        help="class names for the CLIP text head: ImageNet's classnames.txt ('wnid name' "
        "lines), one name per line, or iNaturalist's categories.json",
    )
    train.add_argument(
        "--allow-folder-names",
        action="store_true",
        default=None,
        help="let the CLIP text head use folder ids (n01440764, 0, ...) as class names",
    )
    train.add_argument("--max-steps", type=int, help="stop after N optimizer steps in all (smoke runs)")
    train.add_argument(
        "--train-fraction",
        type=float,
        help="short run: train on a stratified subset, this fraction of every class (each "
        "class keeps >= 1 image, the imbalance is kept); not the paper's setting",
    )
    train.add_argument(
        "--max-train-samples",
        type=int,
        help="short run: a stratified training subset of about N images (as "
        "--train-fraction N/total); not the paper's setting",
    )
    train.add_argument(
        "--max-steps-per-epoch",
        type=int,
        help="short run: at most N steps per epoch (the schedules stay per epoch); not the paper's setting",
    )
    train.add_argument(
        "--tail-threshold",
        type=float,
        help="ImbSAM: classes with fewer training samples are tail "
        "(default: the data set's tail group, 200 CIFAR-10, 20 CIFAR-100/ImageNet/iNat)",
    )
    train.add_argument(
        "--imbsam-tail-weight",
        type=float,
        help=f"ImbSAM tail weight t (default {d.imbsam_tail_weight:g}, the paper's Eq. 1; "
        "2 reproduces the official code)",
    )
    train.add_argument(
        "--group-thresholds",
        type=int,
        nargs=2,
        metavar=("TAIL", "HEAD"),
        help="head/medium/tail groups: tail n < TAIL, head n > HEAD (default: the official "
        "values of the data set and imbalance ratio; the run says which were used)",
    )
    train.add_argument("--ccsam-beta", type=float, help="CC-SAM beta (default 0.3 for 10 classes, else 0.5)")
    train.add_argument(
        "--ccsam-perturb",
        choices=("head", "last"),
        help="what CC-SAM perturbs per class: head (the official code; default "
        f"{d.ccsam_perturb}) or last (last stage + pooling + head, one pass through "
        "them per class: the paper's timing protocol; ResNet-32/50, digits CNN)",
    )
    train.add_argument(
        "--vs-gamma", type=float, help=f"VS loss gamma (default {d.vs_gamma:g}, the released CIFAR scripts')"
    )
    train.add_argument(
        "--vs-tau", type=float, help=f"VS loss tau (default {d.vs_tau:g}, the released CIFAR scripts')"
    )
    train.add_argument(
        "--out",
        help="output folder, owned by one run at a time "
        "(default: a new runs/<dataset>-<method>-<time>-<suffix>)",
    )
    train.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CHECKPOINT",
        help=f"continue from CHECKPOINT (default <out>/{CHECKPOINT_NAME}) with its settings",
    )
    train.add_argument(
        "--compare",
        metavar="M1,M2,...",
        help="train several methods on the same data and seed, print one table",
    )
    add_launch_flags(train)
    add_output_flags(train)
    train.add_argument(
        "--progress-every",
        type=float,
        metavar="SECONDS",
        help="when stderr is not a terminal: a progress line (step, loss, img/s, ETA) every "
        f"SECONDS inside an epoch (default {DEFAULT_PROGRESS_EVERY_S:g}; 0: every step)",
    )
    train.set_defaults(func=lazy("train_cmd", "cmd_train"))


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` and ``--quiet``."""
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar and no progress lines (epoch lines stay)"
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="nothing on stderr but errors (no bar, no progress or epoch lines); the "
        "results still go to stdout",
    )


def add_presets(sub: Any) -> None:
    """``focalsam presets``."""
    sub.add_parser("presets", help="list the presets").set_defaults(func=cmd_presets)


def add_eval(sub: Any) -> None:
    """``focalsam eval``."""
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
    ev.add_argument(
        "--out",
        help="folder for eval.json (default: the checkpoint's folder); checked for writing before evaluating",
    )
    add_output_flags(ev)
    ev.set_defaults(func=lazy("eval_cmd", "cmd_eval"))


# The sub-commands in the order `focalsam --help` lists them; each adds its parser to the
# sub-parsers and sets `func`.  A new sub-command (e.g. `analyze`) is one more entry here; its
# module should import its heavy dependencies inside `func`, so that `--help` stays fast.
def add_analyze(sub: Any) -> None:
    """``focalsam analyze`` (its flags and body live in :mod:`focalsam_fast.analysis.cli`)."""
    from ..analysis.cli import add_parser  # torch-free: the body imports the analysis when it runs

    add_parser(sub)


SUBCOMMANDS: list[Callable[[Any], None]] = [add_train, add_presets, add_eval, add_analyze]


def build_parser() -> argparse.ArgumentParser:
    """The ``focalsam`` argument parser (one sub-command per entry of :data:`SUBCOMMANDS`)."""
    parser = OneLineParser(
        prog="focalsam", description="Focal-SAM and baselines for long-tailed classification."
    )
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"
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


# ---------------------------------------------------------------------------------------- presets
def cmd_presets(args: argparse.Namespace) -> int:
    """``focalsam presets``: name, description and the values each preset sets; a value that rests
    on an assumption (:mod:`~focalsam_fast.train.assumptions`) is marked ``*`` with the reason."""
    from ..train.assumptions import ASSUMPTIONS, assumed_fields, assumptions_of

    indent = " " * 23
    for name, preset in PRESETS.items():
        print(f"{name:<22} {preset.description}")
        cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **preset.values})
        marked = assumed_fields(cfg)
        if preset.values:
            values = (f"{k}={v}{'*' if k in marked else ''}" for k, v in preset.values.items())
            print(indent + ", ".join(values))
        for assumption in assumptions_of(cfg):
            print(f"{indent}* assumed [{assumption.key}]: {assumption.reason}")
    print(
        "\nall presets: method focalsam, loss la, SGD momentum 0.9, seed 0 unless overridden; "
        "use: focalsam train --preset NAME [flags]"
    )
    print(
        "* marks a value that rests on an assumption, not on the released scripts (docs/fidelity.md); "
        "with other flags these also do:"
    )
    for a in ASSUMPTIONS:
        print(f"  [{a.key}] {', '.join(a.fields)} with {a.when}: {a.reason}")
    return 0
