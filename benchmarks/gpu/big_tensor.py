"""Stage 5 of gpu_check.sh: one float32 tensor of 2^31 + 7 elements through ``sq_norm``, ``perturb``
and ``sgd_step`` of the ``cuda`` and ``triton`` impls, against chunked float64 references
(:mod:`benchmarks.gpu._reference64`, which states the tolerances).

A 32-bit element index overflows past 2^31 - 1: a kernel that computes offsets in int32 loses,
repeats or misplaces elements there.  Every element of every result is compared, and the norm
inputs carry large sentinels at indices 2^31 - 1, 2^31 and the last one, so a lost tail moves the
norm far beyond its tolerance.  Needs 7 tensors of 8 GiB (params, grads, grads2, momentum buffers,
perturb output, and the working copies of params and buffers) plus 4 GiB of headroom: the script
fails with the amount when the GPU has less free memory.

``python -m benchmarks.gpu.big_tensor --out OUT/big_tensor.json``
"""

from __future__ import annotations

import sys

import torch

from benchmarks.gpu._common import REQUIRED_CUDA_IMPLS, Report, parse_args, require_cuda
from benchmarks.gpu._reference64 import NORM_RTOL, check_perturb, check_sgd, sq_norm64

N = 2**31 + 7
TENSORS = 7
HEADROOM = 4 * 2**30
RHO, LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.1, 0.9, 1e-4


def needed_bytes(n: int = N) -> int:
    """GPU memory the check needs: :data:`TENSORS` float32 tensors of ``n`` elements + headroom."""
    return TENSORS * 4 * n + HEADROOM


def sentinels(n: int) -> list[int]:
    """Indices that get a large gradient: both sides of 2^31 (when inside) and the last one."""
    return sorted({i for i in (2**31 - 1, 2**31) if i < n} | {n // 2, n - 1})


def run(report: Report, impls: list[str], n: int, device: torch.device) -> None:
    """The three checks for each impl on one flat float32 tensor of ``n`` elements."""
    from focalsam_fast import kernels

    gen = torch.Generator(device=device).manual_seed(0)
    params, grads, grads2, bufs = (torch.randn(n, device=device, generator=gen) for _ in range(4))
    for i in sentinels(n):
        grads[i] = 1000.0
    exact = {adaptive: sq_norm64(grads, params if adaptive else None) for adaptive in (False, True)}
    out = torch.empty_like(params)

    for name in impls:
        ok, why = kernels.availability(name, device)

        def available(name: str = name, ok: bool = ok, why: str = why) -> str:
            if not ok:
                raise RuntimeError(f"impl {name!r} unavailable on {device}: {why}")
            return ""

        if not report.check(f"{name}: available", available):
            continue
        ops = kernels.get_ops(name, device)

        def norm(ops=ops) -> str:
            lines = []
            for adaptive, want in exact.items():
                got = float(ops.sq_norm([grads], [params] if adaptive else None))
                rel = abs(got - want) / want
                lines.append(f"adaptive={adaptive}: {got:.9g} vs {want:.9g} (rel {rel:.2g})")
                if not rel <= NORM_RTOL:
                    raise AssertionError(f"sq_norm {lines[-1]} > {NORM_RTOL}")
            return "; ".join(lines)

        def perturb(ops=ops) -> str:
            details = []
            for adaptive in (False, True):
                norm32 = torch.tensor(exact[adaptive], device=device).sqrt()
                out.fill_(float("nan"))
                ops.perturb([params], [grads], [out], norm32, RHO, adaptive=adaptive)
                details.append(check_perturb(params, grads, out, float(norm32), RHO, adaptive))
            return "; ".join(details)

        def sgd(ops=ops) -> str:
            p, b = params.clone(), bufs.clone()
            ops.sgd_step(
                [p],
                [grads],
                [grads2],
                [b],
                lr=LR,
                momentum=MOMENTUM,
                dampening=0.0,
                weight_decay=WEIGHT_DECAY,
                nesterov=False,
                maximize=False,
                first_step=False,
            )
            return check_sgd(params, grads, grads2, bufs, p, b, LR, MOMENTUM, WEIGHT_DECAY)

        report.check(f"{name}: sq_norm", norm)
        report.check(f"{name}: perturb", perturb)
        report.check(f"{name}: sgd_step", sgd)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    require_cuda("benchmarks/gpu/big_tensor.py")
    dev = torch.device("cuda")
    report = Report("big_tensor")
    free, total = torch.cuda.mem_get_info(dev)
    report.info.update(
        {"elements": N, "free_gib": round(free / 2**30, 1), "needed_gib": round(needed_bytes() / 2**30, 1)}
    )

    def memory() -> str:
        if free < needed_bytes():
            raise RuntimeError(
                f"needs {needed_bytes() / 2**30:.1f} GiB of free GPU memory for 2^31 + 7 "
                f"elements, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"
            )
        return f"{free / 2**30:.1f} GiB free, {needed_bytes() / 2**30:.1f} GiB needed"

    if report.check("free GPU memory", memory):
        run(report, list(REQUIRED_CUDA_IMPLS), N, dev)
    return report.finish(args.out)


if __name__ == "__main__":
    sys.exit(main())
