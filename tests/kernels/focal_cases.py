"""Focal-loss inputs with NaN / inf logits and bad labels, shared by the CPU and GPU kernel tests.

Each case puts its special values into a few rows (the first, the last and every third one) of
random logits; the other rows stay finite, so a test also sees that they are unaffected.  The
columns cover a thread's or lane's first value (column 0), the middle and the last column.
"""

from __future__ import annotations

import torch

CASES = (
    "nan_first",
    "nan_middle",
    "nan_last",
    "posinf",
    "two_posinf",
    "posinf_at_target",
    "neginf",
    "neginf_at_target",
    "all_neginf",
    "bad_label",
)
# cases whose special rows have a NaN softmax (max z' not finite) or a bad label: NaN gradient rows
NAN_GRAD_CASES = frozenset(
    {
        "nan_first",
        "nan_middle",
        "nan_last",
        "posinf",
        "two_posinf",
        "posinf_at_target",
        "all_neginf",
        "bad_label",
    }
)
CLASSES = (1, 7, 100, 300, 8142)
BATCHES = (1, 3, 70)

INF = float("inf")
NAN = float("nan")


def special_rows(batch: int) -> list[int]:
    """Rows that get the special values: the first, the last and every third one."""
    return sorted({0, batch - 1, *range(0, batch, 3)})


def focal_inputs(
    case: str, batch: int, classes: int, dtype: torch.dtype, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor | None]]:
    """``(logits, targets, tables)`` for ``case``; ``tables`` holds coeff / scale / bias / margin /
    weight (``weight`` is given for ``batch == 3`` only, so both forms are covered)."""
    logits = 3 * torch.randn(batch, classes, dtype=dtype, device=device)
    targets = torch.randint(0, classes, (batch,), device=device)
    c = classes
    for n, i in enumerate(special_rows(batch)):
        y = int(targets[i])
        if case == "nan_first":
            logits[i, 0] = NAN
        elif case == "nan_middle":
            logits[i, c // 2] = NAN
        elif case == "nan_last":
            logits[i, c - 1] = NAN
        elif case == "posinf":
            logits[i, (y + 1) % c] = INF
        elif case == "two_posinf":
            logits[i, c // 3] = INF
            logits[i, c - 1] = INF
        elif case == "posinf_at_target":
            logits[i, y] = INF
        elif case == "neginf":
            logits[i, 0] = -INF
            logits[i, c // 2] = -INF
        elif case == "neginf_at_target":
            logits[i, y] = -INF
        elif case == "all_neginf":
            logits[i] = -INF
        elif case == "bad_label":
            targets[i] = (-1, c, 1 << 40)[n % 3]
        else:
            raise ValueError(f"unknown case {case!r}; valid: {', '.join(CASES)}")
    tables: dict[str, torch.Tensor | None] = {
        "coeff": 1.2 * torch.rand(c, dtype=dtype, device=device),
        "scale": 0.5 + torch.rand(c, dtype=dtype, device=device),
        "bias": torch.randn(c, dtype=dtype, device=device),
        "margin": torch.rand(c, dtype=dtype, device=device),
        "weight": 0.1 + torch.rand(c, dtype=dtype, device=device) if batch == 3 else None,
    }
    return logits, targets, tables


def one_special_per_position(
    classes: int, value: float, dtype: torch.dtype, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``classes`` rows; row i has ``value`` in column i (and, for +inf, a second +inf in column
    i + 1), so every column is once the first value of some lane / thread."""
    logits = 3 * torch.randn(classes, classes, dtype=dtype, device=device)
    idx = torch.arange(classes, device=device)
    logits[idx, idx] = value
    if value == INF:
        logits[idx, (idx + 1) % classes] = INF
    return logits, torch.randint(0, classes, (classes,), device=device)
