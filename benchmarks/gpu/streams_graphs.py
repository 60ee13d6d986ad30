"""Stage 6 of gpu_check.sh: streams, host syncs and CUDA graphs.

1. *Side stream*: every op of every fused CUDA impl (``sq_norm``, ``perturb``, ``sgd_step`` with
   ``found_inf``, ``focal_loss`` with a tensor ``grad_scale``) runs under a side stream on inputs
   made there, right after a ~0.25 s ``torch.cuda._sleep`` on that stream: a kernel issued on
   another stream would read the inputs before they exist.  Results must equal the reference run
   on the same stream (``STREAM_TOL``: garbage read from another stream is off by order 1).
2. *No host sync*: one step of SAM, ImbSAM, Focal-SAM and Focal-SAM with ``criterion=`` (impls
   ``cuda`` and ``triton``, ``check_inputs=False``) under ``torch.cuda.set_sync_debug_mode("error")``
   after one warm-up step.  A control check first runs the model's own forward + backward in that
   mode, so a sync in the model is not blamed on the optimizer.
3. *CUDA graph*: a Focal-SAM step (with and without ``criterion=``) captured with
   ``torch.cuda.graph`` after three warm-up steps on a side stream and replayed twice on new data
   equals the same steps run eagerly on a copy of the model (weights, BatchNorm buffers, momentum
   buffers; max relative difference per tensor <= FP32_RTOL: the same kernels run in both, cuDNN
   deterministic, TF32 off).

``python -m benchmarks.gpu.streams_graphs --out OUT/streams_graphs.json``
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.gpu._common import REQUIRED_CUDA_IMPLS, Report, fused_impls, parse_args, require_cuda

DEV = torch.device("cuda")
COUNTS = [300, 120, 40, 9, 2]
SLEEP_CYCLES = 500_000_000  # ~0.25 s at 2 GHz: longer than the host needs to issue one round
METHODS = ("sam", "imbsam", "focalsam", "focalsam+criterion")
# A kernel on the wrong stream reads inputs that do not exist yet (errors of order 1); the exact
# numerics of every op are checked by the kernel tests of stage 2.
STREAM_TOL = 1e-5


def _max_rel(a: Tensor, b: Tensor) -> float:
    """max |a - b| / max |b| (as tests/optim/test_optim_impl_parity.py)."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-12))


# ----------------------------------------------------------------------------- 1. side stream
def side_stream_ops(ops: Any, reference: Any) -> str:
    """All four ops of ``ops`` on a busy side stream vs ``reference`` on the same stream (a first,
    unchecked round compiles the Triton kernels, so that the checked round issues everything while
    the side stream still sleeps)."""
    _side_stream_round(ops, reference, 0)
    results = _side_stream_round(ops, reference, SLEEP_CYCLES)
    for what, (got, want) in results.items():
        torch.testing.assert_close(
            got, want, rtol=STREAM_TOL, atol=STREAM_TOL, msg=lambda m, what=what: f"{what}: {m}"
        )
    return ", ".join(results)


def _side_stream_round(ops: Any, reference: Any, sleep_cycles: int) -> dict[str, tuple[Any, Any]]:
    """(result of ``ops``, result of ``reference``) per op, inputs and calls on a side stream that
    first sleeps ``sleep_cycles`` GPU clock cycles."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        if sleep_cycles:
            torch.cuda._sleep(sleep_cycles)
        sizes = [int(s) for s in torch.randint(1, 200_000, (40,))]
        params, grads, grads2, bufs = ([torch.randn(s, device=DEV) for s in sizes] for _ in range(4))
        results: dict[str, tuple[Any, Any]] = {}
        results["sq_norm"] = (ops.sq_norm(grads, params), reference.sq_norm(grads, params))
        norm = reference.sq_norm(grads).sqrt()
        out, expected = [torch.empty_like(p) for p in params], [torch.empty_like(p) for p in params]
        ops.perturb(params, grads, out, norm, torch.tensor(0.05, device=DEV), adaptive=True)
        reference.perturb(params, grads, expected, norm, torch.tensor(0.05, device=DEV), adaptive=True)
        results["perturb"] = (out, expected)
        kw = {
            "lr": torch.tensor(0.1, device=DEV),
            "momentum": 0.9,
            "dampening": 0.0,
            "weight_decay": 1e-4,
            "nesterov": True,
            "maximize": False,
            "first_step": False,
            "found_inf": torch.zeros(1, device=DEV),
        }
        p, b = [t.clone() for t in params], [t.clone() for t in bufs]
        ref_p, ref_b = [t.clone() for t in params], [t.clone() for t in bufs]
        ops.sgd_step(p, grads, grads2, b, **kw)
        reference.sgd_step(ref_p, grads, grads2, ref_b, **kw)
        results["sgd_step params"], results["sgd_step buffers"] = (p, ref_p), (b, ref_b)
        if hasattr(ops, "focal_loss"):
            logits = 3 * torch.randn(64, 1000, device=DEV)
            targets = torch.randint(0, 1000, (64,), device=DEV)
            tables = [torch.rand(1000, device=DEV) + 0.5 for _ in range(4)]
            scale = torch.tensor([1024.0], device=DEV)
            results["focal_loss"] = (
                ops.focal_loss(logits, targets, *tables, grad_scale=scale),
                reference.focal_loss(logits, targets, *tables, grad_scale=scale),
            )
    side.synchronize()
    return results


# ----------------------------------------------------------------------------- 2./3. steps
def make_optimizer(method: str, model: torch.nn.Module, impl: str) -> Any:
    """``method`` of :data:`METHODS` on ``model``'s parameters, ``check_inputs=False``."""
    from focalsam_fast import SAM, FocalSAM, ImbSAM, LALoss

    kw = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3, "impl": impl, "check_inputs": False}
    if method == "sam":
        return SAM(model.parameters(), rho=0.3, **kw)
    if method == "imbsam":
        return ImbSAM(model.parameters(), class_counts=COUNTS, tail_threshold=50, rho=0.3, **kw)
    device = next(model.parameters()).device
    criterion = LALoss(COUNTS, reduction="none").to(device) if method == "focalsam+criterion" else None
    return FocalSAM(
        model.parameters(), class_counts=COUNTS, gamma=2.0, lam=0.7, rho=0.3, criterion=criterion, **kw
    )


def closure(method: str, model: torch.nn.Module, x: Tensor, y: Tensor) -> Callable[[], Tensor]:
    """Logits for ``criterion=``, else per-sample cross-entropy."""
    if method == "focalsam+criterion":
        return lambda: model(x)
    return lambda: F.cross_entropy(model(x), y, reduction="none")


def batch(seed: int, device: torch.device = DEV) -> tuple[Tensor, Tensor]:
    """A seeded batch of 16 images 3 x 8 x 8 and labels."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return (
        torch.randn(16, 3, 8, 8, device=device, generator=gen),
        torch.randint(0, len(COUNTS), (16,), device=device, generator=gen),
    )


def small_model(device: torch.device = DEV) -> torch.nn.Module:
    from focalsam_fast.testing import SmallCNN

    return SmallCNN(num_classes=len(COUNTS)).to(device)


def model_alone_sync_free() -> str:
    """Control: the model's forward + backward alone make no host sync."""
    model = small_model()
    x, y = batch(0)
    F.cross_entropy(model(x), y, reduction="none").mean().backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        F.cross_entropy(model(x), y, reduction="none").mean().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return ""


def step_sync_free(method: str, impl: str) -> str:
    model = small_model()
    opt = make_optimizer(method, model, impl)
    x, y = batch(1)
    opt.step(closure(method, model, x, y), targets=y)  # warm-up: state and device tables
    torch.cuda.synchronize()
    x, y = batch(2)
    torch.cuda.set_sync_debug_mode("error")
    try:
        opt.step(closure(method, model, x, y), targets=y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    return f"impl {opt.impl}"


def graph_equals_eager(method: str, impl: str, warmup: int = 3, replays: int = 2) -> str:
    """Captured step replayed on new data vs the same steps run eagerly on a copy of the model."""
    from focalsam_fast.testing import FP32_RTOL

    model = small_model()
    eager_model = copy.deepcopy(model)
    opt, eager_opt = make_optimizer(method, model, impl), make_optimizer(method, eager_model, impl)
    data = [batch(10 + i) for i in range(warmup + replays)]
    static_x, static_y = (t.clone() for t in data[0])
    step = closure(method, model, static_x, static_y)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for x, y in data[:warmup]:
            static_x.copy_(x)
            static_y.copy_(y)
            opt.step(step, targets=static_y)
    torch.cuda.current_stream().wait_stream(side)
    for x, y in data[:warmup]:
        eager_opt.step(closure(method, eager_model, x, y), targets=y)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        opt.step(step, targets=static_y)
    for x, y in data[warmup:]:
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        eager_opt.step(closure(method, eager_model, x, y), targets=y)
    torch.cuda.synchronize()

    worst = 0.0
    for (name, a), b in zip(model.state_dict().items(), eager_model.state_dict().values()):
        if a.is_floating_point():
            worst = max(worst, _max_rel(a, b))
            assert _max_rel(a, b) <= FP32_RTOL, f"{name}: {_max_rel(a, b):.3g} > {FP32_RTOL}"
    for p, q in zip(model.parameters(), eager_model.parameters()):
        a = opt.base_optimizer.state[p]["momentum_buffer"]
        b = eager_opt.base_optimizer.state[q]["momentum_buffer"]
        worst = max(worst, _max_rel(a, b))
        assert _max_rel(a, b) <= FP32_RTOL, f"momentum buffer: {_max_rel(a, b):.3g} > {FP32_RTOL}"
    return f"{replays} replays, max relative difference {worst:.3g}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    require_cuda("benchmarks/gpu/streams_graphs.py")
    from focalsam_fast import kernels

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    report = Report("streams_graphs")
    for name in fused_impls(DEV):
        report.check(
            f"side stream: {name}",
            lambda name=name: side_stream_ops(kernels.get_ops(name, DEV), kernels.reference),
        )
    model_ok = report.check("model forward + backward alone is sync-free", model_alone_sync_free)
    for impl in REQUIRED_CUDA_IMPLS:
        for method in METHODS:
            label = f"no host sync: {method}, impl {impl}" + ("" if model_ok else " (the model itself syncs)")
            report.check(label, lambda method=method, impl=impl: step_sync_free(method, impl))
    for impl in REQUIRED_CUDA_IMPLS:
        for method in ("focalsam", "focalsam+criterion"):
            report.check(
                f"CUDA graph replay == eager: {method}, impl {impl}",
                lambda method=method, impl=impl: graph_equals_eager(method, impl),
            )
    return report.finish(args.out)


if __name__ == "__main__":
    sys.exit(main())
