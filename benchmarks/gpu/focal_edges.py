"""Stage 4b of gpu_check.sh: ``focal_loss`` edge cases of every CUDA-capable impl vs the reference.

Cases (KERNEL-INTERFACE.md, rule 3): NaN in column 0 (C = 100; rows whose label is 0 and rows
whose label is not); +inf logits (one, two, at the label) and rows of -inf; fp16 and bf16 logits
with |z| in [60, 80] (exp overflows 16 bits: the kernels must work in fp32), with the AMP loss
scale 65,536 as ``grad_scale`` (a tensor) and without; 70,000 rows (more than a 65,535 grid
dimension); labels outside [0, C) (-1, C, 2^40).  Each impl's losses and both gradients must equal
:func:`focalsam_fast.kernels.reference.focal_loss` with ``torch.testing.assert_close(...,
equal_nan=True)`` (NaN exactly where the reference has NaN, infinities equal).

Tolerances: ``rtol`` = FP32_LOSS_RTOL (1e-5, float32: logsumexp summed in another order), 1e-9 in
float64, 1e-2 for 16-bit logits (the kernels round once from fp32: one 16-bit ulp, 2^-8 relative
for bfloat16); ``atol = rtol * max |finite reference entry|`` of the tensor, because gradient entries
far below the largest one (tiny softmax values, 16-bit subnormals) are only accurate to that scale.

The case builders and :func:`check_case` take any device, so the CPU test-suite runs them on the
CPU impls; ``main`` runs them on the GPU for every impl of ``available_impls('cuda')`` with a
``focal_loss`` (it fails when ``cuda`` or ``triton`` is not among them).

``python -m benchmarks.gpu.focal_edges --out OUT/focal_edges.json``
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import ModuleType

import torch
from torch import Tensor

from benchmarks.gpu._common import REQUIRED_CUDA_IMPLS, Report, fused_impls, parse_args, require_cuda

INF, NAN = float("inf"), float("nan")


@dataclass
class Case:
    """One call of ``focal_loss``."""

    name: str
    logits: Tensor
    targets: Tensor
    tables: dict[str, Tensor]
    weight: Tensor | None = None
    grad_scale: float | Tensor | None = None
    nan_rows: list[int] = field(default_factory=list)  # rows whose loss the rules make NaN

    def call(self, ops: ModuleType) -> tuple[Tensor, Tensor, Tensor]:
        return ops.focal_loss(
            self.logits, self.targets, **self.tables, weight=self.weight, grad_scale=self.grad_scale
        )


def _tables(classes: int, device: torch.device) -> dict[str, Tensor]:
    return {
        "coeff": torch.rand(classes, device=device),
        "scale": 0.5 + torch.rand(classes, device=device),
        "bias": torch.randn(classes, device=device),
        "margin": torch.rand(classes, device=device),
    }


def _labels(batch: int, classes: int, device: torch.device) -> Tensor:
    return torch.randint(0, classes, (batch,), device=device)


def build_cases(device: torch.device | str, big_rows: int = 70_000) -> list[Case]:
    """The edge cases on ``device`` (fresh random values each call)."""
    dev = torch.device(device)
    cases = []

    logits = 3 * torch.randn(8, 100, device=dev)
    targets = _labels(8, 100, dev)
    targets[0], targets[1] = 0, 5
    logits[:4, 0] = NAN
    cases.append(Case("NaN in column 0, C=100", logits, targets, _tables(100, dev), nan_rows=[0, 1, 2, 3]))

    logits = 3 * torch.randn(7, 50, device=dev)
    targets = _labels(7, 50, dev)
    targets[:5] = torch.tensor([3, 4, 5, 6, 7])
    logits[0, 10] = INF  # one +inf elsewhere than the label: loss +inf
    logits[1, 4] = INF  # +inf at the label: inf - inf
    logits[2, 11], logits[2, 12] = INF, INF  # two +inf
    logits[3] = -INF  # all -inf
    logits[4, 7] = -INF  # -inf at the label: loss +inf
    logits[5, 8], logits[5, 9] = INF, -INF
    cases.append(
        Case("+inf and -inf logits", logits, targets, _tables(50, dev), weight=torch.rand(50, device=dev))
    )

    for dtype in (torch.float16, torch.bfloat16):
        sign = torch.randint(0, 2, (16, 1000), device=dev) * 2 - 1
        logits = (sign * (60 + 20 * torch.rand(16, 1000, device=dev))).to(dtype)
        targets = _labels(16, 1000, dev)
        short = str(dtype).removeprefix("torch.")
        cases.append(Case(f"{short} |z| > 60", logits, targets, _tables(1000, dev)))
        cases.append(
            Case(
                f"{short} |z| > 60, grad_scale 65536 (tensor)",
                logits,
                targets,
                _tables(1000, dev),
                grad_scale=torch.tensor([65536.0], device=dev),
            )
        )

    cases.append(
        Case(
            f"{big_rows} rows, C=37",
            3 * torch.randn(big_rows, 37, device=dev),
            _labels(big_rows, 37, dev),
            _tables(37, dev),
            grad_scale=8.0,
        )
    )
    cases.append(
        Case(
            f"{big_rows} rows, C=5, fp16",
            (3 * torch.randn(big_rows, 5, device=dev)).half(),
            _labels(big_rows, 5, dev),
            _tables(5, dev),
            weight=torch.rand(5, device=dev),
        )
    )

    targets = _labels(6, 100, dev)
    targets[1], targets[3], targets[4] = -1, 100, 2**40
    cases.append(
        Case(
            "labels outside [0, C)",
            3 * torch.randn(6, 100, device=dev),
            targets,
            _tables(100, dev),
            nan_rows=[1, 3, 4],
        )
    )
    cases.append(
        Case(
            "labels outside [0, C), fp64",
            3 * torch.randn(6, 100, device=dev, dtype=torch.float64),
            targets,
            _tables(100, dev),
            nan_rows=[1, 3, 4],
        )
    )
    return cases


def _rtol(dtype: torch.dtype) -> float:
    from focalsam_fast.testing import FP32_LOSS_RTOL, FP64_RTOL

    if dtype == torch.float64:
        return FP64_RTOL
    return FP32_LOSS_RTOL if dtype == torch.float32 else 1e-2


def check_case(ops: ModuleType, reference: ModuleType, case: Case) -> str:
    """Raise ``AssertionError`` unless ``ops`` matches ``reference`` on ``case`` (see module doc)."""
    got, want = case.call(ops), case.call(reference)
    rtol = _rtol(case.logits.dtype)
    for what, g, w in zip(("losses", "grad_a", "grad_b"), got, want):
        if g.dtype != w.dtype or g.shape != w.shape:
            raise AssertionError(f"{what}: {g.dtype} {tuple(g.shape)}, expected {w.dtype} {tuple(w.shape)}")
        finite = w[torch.isfinite(w)]
        atol = rtol * float(finite.abs().max()) if finite.numel() else 0.0
        torch.testing.assert_close(
            g, w, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m, what=what: f"{case.name}: {what}: {m}"
        )
    nan_rows = torch.isnan(want[0]).nonzero().flatten().tolist()
    if case.nan_rows and nan_rows != case.nan_rows:
        raise AssertionError(
            f"{case.name}: the reference gives NaN losses in rows {nan_rows}, the rules say {case.nan_rows}"
        )
    return f"NaN rows {nan_rows}" if nan_rows else ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    require_cuda("benchmarks/gpu/focal_edges.py")
    from focalsam_fast import kernels

    dev = torch.device("cuda")
    report = Report("focal_edges")
    impls = fused_impls(dev, with_focal_loss=True)
    report.info["impls"] = impls

    def required() -> str:
        missing = [n for n in REQUIRED_CUDA_IMPLS if n not in impls]
        if missing:
            raise RuntimeError(f"no focal_loss on cuda from {missing} (impls with one: {impls})")
        return f"impls: {impls}"

    report.check("cuda and triton have focal_loss", required)
    for case in build_cases(dev):
        for name in impls:
            ops = kernels.get_ops(name, dev)
            report.check(
                f"{name}: {case.name}", lambda case=case, ops=ops: check_case(ops, kernels.reference, case)
            )
    return report.finish(args.out)


if __name__ == "__main__":
    sys.exit(main())
