"""Stage 3 of gpu_check.sh: every op of ``focalsam_fast.kernels.cuda`` on awkward inputs, short
enough to run under ``compute-sanitizer --tool memcheck`` and ``--tool racecheck``.

Inputs: odd sizes; views with a storage offset of one element (vector loads off, the tail of the
allocation right after the last element); empty tensors inside lists and alone; lists of 150
tensors plus one of 330 x 65,536 + 3 elements (more tensors than one launch table holds at every
list depth, more chunks than one chunk table); float32, float64, float16 and bfloat16.
Ops: ``sq_norm`` (plain, adaptive); ``perturb`` (tensor hyper-parameters, adaptive, a non-finite
norm); ``sgd_step`` (first and later steps, nesterov, ``grads2`` given and not, momentum 0,
``found_inf`` 0 and 1); ``focal_loss`` with ``grad_scale`` (float and tensor) and class weights on
C = 8142 with B = 3, C = 1, C = 100 with labels outside [0, C), and misaligned logits.
Results are compared with the reference, loosely (this stage is about memory and races; stage 2
checks the numerics): a kernel that silently wrote nothing still fails here.  The reference runs on
CPU copies of the inputs and the comparisons on the CPU, so the GPU runs little besides the kernels
under test and element-wise fills (the sanitizers slow torch's shared-memory reductions a lot).

Run it with ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` (gpu_check.sh does): every tensor is then its own
``cudaMalloc`` and memcheck sees an access past its end.

``compute-sanitizer --tool memcheck --error-exitcode 86 python -m benchmarks.gpu.sanitize_ops``
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from benchmarks.gpu._common import Report, parse_args, require_cuda

ODD = (1, 7, 1_000, 65_537, (3, 5, 2, 2))
TOL = {
    torch.float32: (1e-5, 1e-6),
    torch.float64: (1e-9, 1e-9),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}


def _rand(
    size: int | tuple[int, ...], dtype: torch.dtype, device: torch.device, misaligned: bool = False
) -> Tensor:
    if misaligned:
        n = torch.Size(size if isinstance(size, tuple) else (size,)).numel()
        return torch.randn(n + 1, dtype=dtype, device=device)[1:].view(size)
    return torch.randn(size, dtype=dtype, device=device)


Sizes = list[int | tuple[int, ...]]


def input_sets(big: int = 330 * 65_536 + 3) -> dict[str, tuple[Sizes, bool, torch.dtype]]:
    """name -> (sizes, misaligned, dtype); ``big`` is the size of the multi-chunk tensor."""
    many = [int(s) for s in torch.randint(1, 3000, (150,))] + [big]
    return {
        "odd fp32": (list(ODD), False, torch.float32),
        "misaligned fp32": (list(ODD), True, torch.float32),
        "misaligned fp64": (list(ODD), True, torch.float64),
        "misaligned fp16": (list(ODD), True, torch.float16),
        "misaligned bf16": (list(ODD), True, torch.bfloat16),
        "empty inside": ([5, 0, 3, 0], False, torch.float32),
        "empty only": ([0], False, torch.float32),
        "multi-launch fp32": (many, False, torch.float32),
    }


def _host(x: Any) -> Any:
    """CPU copies of a tensor, of the tensors of a list or dict, or ``x`` itself (None, floats)."""
    if isinstance(x, Tensor):
        return x.cpu()
    if isinstance(x, (list, tuple)):
        return [_host(t) for t in x]
    if isinstance(x, dict):
        return {k: _host(v) for k, v in x.items()}
    return x


def _close(actual: Any, expected: Any, dtype: torch.dtype, scale: float = 1.0) -> None:
    """``actual`` (on the device) against ``expected`` (on the CPU), compared on the CPU."""
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(_host(actual), expected, rtol=rtol, atol=atol * scale, equal_nan=True)


def check_list_ops(
    report: Report,
    ops: ModuleType,
    reference: ModuleType,
    device: torch.device,
    name: str,
    sizes: Sizes,
    misaligned: bool,
    dtype: torch.dtype,
) -> None:
    """sq_norm, perturb and sgd_step of ``ops`` on one input set."""
    params, grads, grads2, bufs = ([_rand(s, dtype, device, misaligned) for s in sizes] for _ in range(4))
    h_params, h_grads, h_grads2, h_bufs = _host([params, grads, grads2, bufs])
    acc = torch.float64 if dtype == torch.float64 else torch.float32

    def sq_norm() -> None:
        for p, h_p in ((None, None), (params, h_params)):
            _close(ops.sq_norm(grads, p), reference.sq_norm(h_grads, h_p), acc)

    def perturb() -> None:
        h_norm = reference.sq_norm(h_grads).sqrt()
        for adaptive in (False, True):
            for h_n in (h_norm, torch.tensor(float("inf"), dtype=acc)):
                h_rho, h_inv = torch.tensor(0.05), torch.tensor(0.5)
                out = [torch.full_like(p, float("nan")) for p in params]
                expected = [torch.empty_like(p) for p in h_params]
                ops.perturb(
                    params,
                    grads,
                    out,
                    h_n.to(device),
                    h_rho.to(device),
                    adaptive=adaptive,
                    inv_scale=h_inv.to(device),
                )
                reference.perturb(h_params, h_grads, expected, h_n, h_rho, adaptive=adaptive, inv_scale=h_inv)
                _close(out, expected, dtype)

    def sgd_step() -> None:
        h_lr = torch.tensor(0.1, dtype=acc)
        cases = ((0.9, True, True, True), (0.9, False, False, False), (0.0, False, True, False))
        for momentum, nesterov, two_grads, first in cases:
            for flag in (0.0, 1.0):
                h_found_inf = torch.full((1,), flag)
                kw = {
                    "momentum": momentum,
                    "dampening": 0.0,
                    "weight_decay": 1e-4,
                    "nesterov": nesterov,
                    "maximize": False,
                    "first_step": first,
                }
                p, b = [t.clone() for t in params], [t.clone() for t in bufs]
                ref_p, ref_b = [t.clone() for t in h_params], [t.clone() for t in h_bufs]
                ops.sgd_step(
                    p,
                    grads,
                    grads2 if two_grads else None,
                    b,
                    lr=h_lr.to(device),
                    found_inf=h_found_inf.to(device),
                    **kw,
                )
                reference.sgd_step(
                    ref_p,
                    h_grads,
                    h_grads2 if two_grads else None,
                    ref_b,
                    lr=h_lr,
                    found_inf=h_found_inf,
                    **kw,
                )
                _close(p, ref_p, dtype)
                _close(b, ref_b, dtype)
                if flag:
                    unchanged = all(torch.equal(x, y) for x, y in zip(_host(p), h_params))
                    assert unchanged, "found_inf=1 changed params"

    for op, fn in (("sq_norm", sq_norm), ("perturb", perturb), ("sgd_step", sgd_step)):
        report.check(f"{op} [{name}]", fn)


def focal_cases() -> dict[str, tuple[int, int, torch.dtype, bool, bool]]:
    """name -> (batch, classes, dtype, misaligned logits, labels outside [0, C) in two rows)."""
    return {
        "B=3 C=8142 fp32": (3, 8142, torch.float32, False, False),
        "B=3 C=8142 fp16 misaligned": (3, 8142, torch.float16, True, False),
        "B=4 C=1 fp32": (4, 1, torch.float32, False, False),
        "B=9 C=100 fp64 bad labels": (9, 100, torch.float64, True, True),
        "B=9 C=100 bf16 bad labels": (9, 100, torch.bfloat16, False, True),
    }


def check_focal_loss(
    report: Report,
    ops: ModuleType,
    reference: ModuleType,
    device: torch.device,
    name: str,
    batch: int,
    classes: int,
    dtype: torch.dtype,
    misaligned: bool,
    bad_labels: bool,
) -> None:
    """``focal_loss`` of ``ops`` on one case, three ways of giving ``grad_scale``."""

    def run() -> None:
        logits = 3 * _rand((batch, classes), dtype, device, misaligned)
        targets = torch.randint(0, classes, (batch,), device=device)
        if bad_labels:
            targets[0], targets[-1] = classes, -1
        tables = {
            "coeff": torch.rand(classes, device=device),
            "scale": 0.5 + torch.rand(classes, device=device),
            "bias": torch.randn(classes, device=device),
            "margin": torch.rand(classes, device=device),
        }
        weight = torch.rand(classes, device=device) + 0.1
        for grad_scale in (None, 1024.0, torch.tensor([65536.0], device=device)):
            got = ops.focal_loss(logits, targets, **tables, weight=weight, grad_scale=grad_scale)
            want = reference.focal_loss(
                *_host([logits, targets]), **_host(tables), weight=_host(weight), grad_scale=_host(grad_scale)
            )
            scale = 1.0 if grad_scale is None else float(grad_scale)
            for g, w, s in zip(got, want, (1.0, scale, scale)):
                _close(g, w, dtype, s)

    report.check(f"focal_loss [{name}]", run)


def run_all(
    report: Report, ops: ModuleType, reference: ModuleType, device: torch.device, big: int = 330 * 65_536 + 3
) -> None:
    """Every input set and focal-loss case (the CPU test-suite runs this with the C++ ops)."""
    for name, (sizes, misaligned, dtype) in input_sets(big).items():
        check_list_ops(report, ops, reference, device, name, sizes, misaligned, dtype)
    for name, case in focal_cases().items():
        check_focal_loss(report, ops, reference, device, name, *case)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    require_cuda("benchmarks/gpu/sanitize_ops.py")
    from focalsam_fast.kernels import cuda, reference

    torch.manual_seed(0)
    report = Report("sanitize_ops")
    run_all(report, cuda, reference, torch.device("cuda"))
    torch.cuda.synchronize()
    return report.finish(args.out)


if __name__ == "__main__":
    sys.exit(main())
