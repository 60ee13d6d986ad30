"""``focalsam analyze``: the sub-command's flags (:func:`add_parser`) and its body (:func:`run`).

``cli/main.py`` registers it with ``add_parser(sub)``; ``run`` returns the exit code and raises the
CLI's one-line error classes (``UsageError`` for malformed flags, :class:`AnalysisError` /
``CheckpointError`` / ``SetupError`` for bad values, files or devices).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..train.files import probe_writable
from .settings import STAGES, AnalysisSettings

if TYPE_CHECKING:
    from .api import CheckpointAnalysis

_D = AnalysisSettings()


def add_parser(subparsers: Any) -> None:
    """Add the ``analyze`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "analyze",
        help="Hessian spectrum, lambda_max, Tr(H) and loss landscapes per class group",
        description="Per class group of the training data: top eigenvalues (Lanczos or power iteration "
        "on Hessian-vector products), Hutchinson trace, SLQ spectral density and 1-D/2-D "
        "filter-normalised loss landscapes, with the loss the run used and BatchNorm in "
        "eval mode.  Writes analysis.json and PNGs.",
    )
    p.add_argument(
        "checkpoint",
        nargs="+",
        help="one or more last.pt written by `focalsam train` (several: methods side by side)",
    )
    p.add_argument("--groups", help="comma-separated groups, e.g. head,tail (default: every non-empty group)")
    p.add_argument(
        "--classes",
        action="append",
        metavar="I,J,...",
        help="analyse these classes as one group instead of --groups (repeat for more groups)",
    )
    p.add_argument("--samples", type=int, help="at most N training samples per group (seeded random subset)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--out", help="output folder (default: <first checkpoint's folder>/analysis)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)} (default all)")
    p.add_argument("--top-k", type=int, default=_D.top_k, help=f"eigenvalues to compute (default {_D.top_k})")
    p.add_argument(
        "--eigen-method",
        default=_D.eigen_method,
        choices=("lanczos", "power"),
        help=f"default {_D.eigen_method}",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=_D.tol,
        help=f"relative residual ||Hv - lv||/|l| to stop at (default {_D.tol:g})",
    )
    p.add_argument("--max-iter", type=int, default=_D.max_iter, help=f"iteration cap (default {_D.max_iter})")
    p.add_argument(
        "--trace-probes",
        type=int,
        default=_D.trace_probes,
        help=f"Hutchinson probes (default {_D.trace_probes})",
    )
    p.add_argument(
        "--probe-batch",
        type=int,
        default=_D.probe_batch,
        help="Hutchinson probes per batched product (default 8 on CUDA, 1 on the CPU)",
    )
    p.add_argument("--slq-runs", type=int, default=_D.slq_runs, help=f"SLQ runs (default {_D.slq_runs})")
    p.add_argument(
        "--slq-steps",
        type=int,
        default=_D.slq_steps,
        help=f"Lanczos steps per SLQ run (default {_D.slq_steps})",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=_D.sigma_rel,
        dest="sigma_rel",
        help=f"Gaussian width, a fraction of the spectrum's span (default {_D.sigma_rel})",
    )
    p.add_argument(
        "--landscape-points",
        type=int,
        default=_D.landscape_points,
        help=f"points of the 1-D landscape (default {_D.landscape_points})",
    )
    p.add_argument(
        "--landscape-2d-points",
        type=int,
        default=_D.landscape_2d_points,
        help=f"points per axis of the 2-D landscape (default {_D.landscape_2d_points})",
    )
    p.add_argument(
        "--landscape-span",
        type=float,
        default=_D.landscape_span,
        help=f"landscape coordinates in [-span, span] (default {_D.landscape_span:g})",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=_D.chunk_size,
        help=f"samples per forward pass (default {_D.chunk_size})",
    )
    p.add_argument("--dtype", default=_D.dtype, choices=("float32", "float64"), help="default float32")
    p.add_argument(
        "--no-graph-cache",
        dest="cache_graph",
        action="store_false",
        help="rebuild each chunk's first-order graph for every product (less memory, slower)",
    )
    p.add_argument("--seed", type=int, default=_D.seed, help=f"seed of every random draw (default {_D.seed})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage lines")
    p.set_defaults(func=run)


def _usage(msg: str) -> Exception:
    from ..cli.main import UsageError  # the CLI's class; imported here so that main can import this module

    return UsageError(msg)


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise _usage(f"{flag} takes comma-separated class indices like 0,1,2, got {text!r}") from None


def _settings(args: argparse.Namespace) -> AnalysisSettings:
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    names = (
        "top_k",
        "eigen_method",
        "tol",
        "max_iter",
        "trace_probes",
        "probe_batch",
        "slq_runs",
        "slq_steps",
        "sigma_rel",
        "landscape_points",
        "landscape_2d_points",
        "landscape_span",
        "chunk_size",
        "dtype",
        "cache_graph",
        "seed",
    )
    settings = AnalysisSettings(**{n: getattr(args, n) for n in names}, stages=stages)
    settings.check()
    return settings


def table(analyses: list[CheckpointAnalysis]) -> str:
    """One line per (checkpoint, group): samples, loss, lambda_max with its residual, Tr(H) +- s.e."""
    lines = [
        f"{'method':<10} {'group':<14} {'samples':>7} {'loss':>9} {'lambda_max':>11} {'rel.res':>8} "
        f"{'Tr(H)':>11} {'s.e.':>9}"
    ]
    for a in analyses:
        for name, g in a.groups.items():
            lam = (
                f"{g.eigen.eigenvalues[0]:11.4g} {g.eigen.residuals[0]:8.1e}"
                if g.eigen
                else f"{'-':>11} {'-':>8}"
            )
            tr = f"{g.trace.estimate:11.4g} {g.trace.stderr:9.2g}" if g.trace else f"{'-':>11} {'-':>9}"
            lines.append(f"{a.method:<10} {name:<14} {g.samples:>7} {g.loss:9.4f} {lam} {tr}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Body of ``focalsam analyze``; returns the exit code (0)."""
    if args.groups is not None and args.classes is not None:
        raise _usage("give --groups or --classes, not both")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups is not None else None
    classes = [_int_list(c, "--classes") for c in args.classes] if args.classes is not None else None
    settings = _settings(args)
    from .api import analyze_checkpoint, write_outputs  # torch and the models: only when it runs

    out = Path(args.out) if args.out else Path(args.checkpoint[0]).parent / "analysis"
    probe_writable(out)
    progress = False if args.no_progress else None
    print(
        f"analyze: BatchNorm in eval mode (running statistics); seed {settings.seed}; {settings.dtype}; "
        f"device {args.device}; training samples with the test-time transform",
        flush=True,
    )
    analyses = []
    for path in args.checkpoint:
        analyses.append(
            analyze_checkpoint(path, groups, classes, args.samples, args.device, settings, progress)
        )
    written = write_outputs(analyses, out)
    print(
        f"BatchNorm in eval mode; seed {settings.seed}; {settings.eigen_method} top-{settings.top_k} "
        f"(tol {settings.tol:g}, cap {settings.max_iter}); Hutchinson {settings.trace_probes} Rademacher "
        f"probes; SLQ {settings.slq_runs} runs x {settings.slq_steps} steps"
    )
    print(table(analyses))
    print("written: " + ", ".join(str(p) for p in written))
    return 0
