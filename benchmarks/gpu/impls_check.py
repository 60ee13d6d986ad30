"""Stage 1c of gpu_check.sh (after the build): the CUDA and Triton kernels are the ones built here
and they run on this GPU.

Fails unless ``focalsam_fast`` is imported from this checkout (not a stale install),
``focalsam_fast._C_cuda`` imports, ``kernels.available_impls('cuda')`` contains ``cuda`` and
``triton`` (else the reasons :func:`focalsam_fast.kernels.availability` gives are printed), Triton is
not interpreted, ``impl='auto'`` picks ``cuda`` on the GPU, and one ``sq_norm`` per impl matches the
reference (a kernel built for another architecture fails here with "no kernel image").

``python -m benchmarks.gpu.impls_check --out OUT/impls.json``
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

from benchmarks.gpu._common import REQUIRED_CUDA_IMPLS, Report, fused_impls, parse_args, require_cuda

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    require_cuda("benchmarks/gpu/impls_check.py")
    report = Report("impls_check")
    dev = torch.device("cuda")

    def package() -> str:
        import focalsam_fast

        where = Path(focalsam_fast.__file__).resolve().parent
        if where != REPO / "focalsam_fast":
            raise RuntimeError(
                f"focalsam_fast is imported from {where}, not from this checkout {REPO}; "
                "uninstall the other copy"
            )
        return str(where)

    def native() -> str:
        paths = [importlib.import_module(f"focalsam_fast._C_{k}").__file__ for k in ("cpu", "cuda")]
        report.info["native_modules"] = paths
        return ", ".join(str(p) for p in paths)

    def impls() -> str:
        from focalsam_fast import kernels

        names = kernels.available_impls(dev)
        report.info["available_impls_cuda"] = names
        missing = [n for n in REQUIRED_CUDA_IMPLS if n not in names]
        if missing:
            why = "; ".join(f"{n}: {kernels.availability(n, dev)[1]}" for n in missing)
            raise RuntimeError(f"available_impls('cuda') = {names} lacks {missing} ({why})")
        return f"available on cuda: {names}"

    def triton_compiled() -> str:
        tk = importlib.import_module("focalsam_fast.kernels.triton")
        if tk.INTERPRETED:
            raise RuntimeError("focalsam_fast.kernels.triton.INTERPRETED is True (TRITON_INTERPRET set)")
        return "compiled"

    def auto() -> str:
        from focalsam_fast import kernels

        picked = kernels.resolve("auto", dev)
        if picked != "cuda":
            raise RuntimeError(f"impl='auto' resolves to {picked!r} on cuda, expected 'cuda'")
        return picked

    def runs() -> str:
        from focalsam_fast import kernels
        from focalsam_fast.testing import tolerances

        grads = [torch.randn(n, device=dev) for n in (3, 70_001)]
        expected = kernels.reference.sq_norm(grads)
        for name in fused_impls(dev):
            torch.testing.assert_close(
                kernels.get_ops(name, dev).sq_norm(grads),
                expected,
                **tolerances(torch.float32),
                msg=lambda m, n=name: f"{n}: {m}",
            )
        return f"sq_norm of every impl matches the reference on {torch.cuda.get_device_name(dev)}"

    for name, fn in (
        ("package from this checkout", package),
        ("native modules", native),
        ("cuda and triton available", impls),
        ("triton compiled", triton_compiled),
        ("auto picks cuda", auto),
        ("kernels run", runs),
    ):
        report.check(name, fn)
    return report.finish(args.out)


if __name__ == "__main__":
    sys.exit(main())
