"""Evaluation: overall top-1, head/medium/tail and per-class accuracy (groups of the data package)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data import group_accuracy, per_class_accuracy

GROUPS = ("head", "medium", "tail")


@dataclass
class EvalResult:
    """Accuracies as fractions: ``overall`` top-1 over samples, group means of per-class accuracy."""

    overall: float
    head: float
    medium: float
    tail: float
    per_class: list[float]
    samples: int

    def to_dict(self) -> dict[str, float | int | list[float]]:
        """A JSON-serialisable copy (NaN for empty groups becomes ``None``)."""
        return {k: _json_float(v) for k, v in asdict(self).items()}


def _json_float(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_json_float(v) for v in value]
    return value


def autocast_for(device: torch.device, amp: str) -> AbstractContextManager:
    """``torch.autocast`` for ``amp`` ('bf16' / 'fp16') on ``device``, or a no-op for 'none'."""
    if amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp: str = "none",
    progress: bool | None = None,
    desc: str = "eval",
) -> tuple[np.ndarray, np.ndarray]:
    """``(predictions, targets)`` over ``loader`` in eval mode (argmax of the raw logits)."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        for x, y in tqdm(loader, desc=desc, leave=False, disable=_disable(progress)):
            with autocast_for(device, amp):
                logits = model(x.to(device, non_blocking=True))
            preds.append(logits.argmax(dim=1).cpu())
            targets.append(torch.as_tensor(y).cpu())
    finally:
        model.train(was_training)
    return torch.cat(preds).numpy(), torch.cat(targets).numpy()


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: ``None`` lets tqdm turn itself off when stderr is not a terminal."""
    return None if progress is None else not progress


def summarize(
    preds: np.ndarray, targets: np.ndarray, num_classes: int, groups: Mapping[str, Sequence[int]]
) -> EvalResult:
    """Overall, group and per-class accuracy of ``preds`` against ``targets``."""
    acc = per_class_accuracy(preds, targets, num_classes)
    by_group = group_accuracy(acc, {g: list(groups.get(g, [])) for g in GROUPS})
    overall = float((preds == targets).mean()) if len(targets) else float("nan")
    return EvalResult(
        overall, by_group["head"], by_group["medium"], by_group["tail"], [float(a) for a in acc], len(targets)
    )


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    groups: Mapping[str, Sequence[int]],
    device: torch.device,
    amp: str = "none",
    progress: bool | None = None,
) -> EvalResult:
    """Predict over ``loader`` and summarise (see :func:`summarize`)."""
    preds, targets = predict(model, loader, device, amp, progress)
    return summarize(preds, targets, num_classes, groups)


def _pct(value: float) -> str:
    return "  n/a" if value is None or math.isnan(value) else f"{100 * value:5.1f}"


def group_table(results: Mapping[str, EvalResult], groups: Mapping[str, Sequence[int]]) -> str:
    """Side-by-side table: one column per result (e.g. per method), rows overall/head/medium/tail."""
    names = list(results)
    width = max(9, *(len(n) for n in names))
    header = f"{'accuracy %':<18}" + "".join(f"{n:>{width + 2}}" for n in names)
    lines = [header, "-" * len(header)]
    rows = [("overall", "overall")] + [(g, f"{g} ({len(groups.get(g, []))} cls)") for g in GROUPS]
    for key, label in rows:
        lines.append(
            f"{label:<18}" + "".join(f"{_pct(getattr(results[n], key)):>{width + 2}}" for n in names)
        )
    return "\n".join(lines)


def per_class_table(
    result: EvalResult,
    class_counts: Sequence[int],
    class_names: Sequence[str],
    groups: Mapping[str, Sequence[int]],
) -> str:
    """One line per class: index, name, training count, group, test accuracy."""
    group_of = {k: g for g in GROUPS for k in groups.get(g, [])}
    lines = [f"{'class':>5}  {'name':<16} {'train n':>8}  {'group':<6} {'acc %':>6}"]
    for k, (name, n, acc) in enumerate(zip(class_names, class_counts, result.per_class, strict=True)):
        lines.append(f"{k:>5}  {str(name)[:16]:<16} {n:>8}  {group_of.get(k, '-'):<6} {_pct(acc):>6}")
    return "\n".join(lines)
