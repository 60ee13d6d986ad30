"""A whole step with ``check_inputs=False`` makes no host sync (issue 9, fault 7).

Every way a step could read a tensor value on the host is counted: the ATen ops that do it
(``_local_scalar_dense``, ``item``, ``is_nonzero``, ``equal``) seen by a dispatch mode, and the
Python conversions (``bool``/``int``/``float``/``tolist``/``item``), which on CPU tensors may bypass
the dispatcher.  The same counter must see the host reads of ``check_inputs=True`` (control).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from focalsam_fast import SAM, FocalSAM, ImbSAM, LALoss, kernels

SYNC_OPS = {"aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::equal"}
CONVERSIONS = ("__bool__", "__int__", "__float__", "__index__", "tolist", "item")
COUNTS = [40, 12, 3]
FUSED = [i for i in ("cpp", "triton") if kernels.availability(i, "cpu")[0]]


class SyncCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.active = False

    def __enter__(self):
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc):
        self.active = False
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in SYNC_OPS:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> SyncCounter:
    mode = SyncCounter()
    for attr in CONVERSIONS:
        original = getattr(torch.Tensor, attr)

        def wrapped(self, *a, _original=original, _attr=attr, **k):
            if mode.active:
                mode.seen.append(f"Tensor.{_attr}")
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, attr, wrapped)
    return mode


def _setup(method: str, impl: str, check: bool, criterion: bool):
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    common = dict(rho=0.1, lr=0.05, momentum=0.9, weight_decay=1e-3, impl=impl, check_inputs=check)
    if method == "sam":
        opt = SAM(model.parameters(), **common)
    elif method == "imbsam":
        opt = ImbSAM(model.parameters(), class_counts=COUNTS, tail_threshold=10, **common)
    else:
        opt = FocalSAM(
            model.parameters(),
            class_counts=COUNTS,
            gamma=2.0,
            lam=0.7,
            criterion=LALoss(COUNTS, reduction="none") if criterion else None,
            **common,
        )
    x, y = torch.randn(12, 6), torch.randint(0, 3, (12,))
    if criterion:
        return opt, (lambda: model(x)), y
    return opt, (lambda: F.cross_entropy(model(x), y, reduction="none")), y


CASES = [("sam", False), ("imbsam", False), ("focal", False), ("focal", True)]


@pytest.mark.parametrize("impl", FUSED)
@pytest.mark.parametrize(("method", "criterion"), CASES)
@pytest.mark.parametrize("amp", [False, True], ids=["no-scaler", "grad-scaler"])
def test_step_makes_no_host_sync(
    counter: SyncCounter, method: str, criterion: bool, amp: bool, impl: str
) -> None:
    opt, closure, y = _setup(method, impl, check=False, criterion=criterion)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if amp else None
    for _ in range(2):  # the first step creates the momentum buffers
        with counter:
            opt.step(closure, targets=y, grad_scaler=scaler)
        assert counter.seen == [], f"host reads in one {method} step: {counter.seen}"


@pytest.mark.parametrize("amp", [False, True], ids=["no-scaler", "grad-scaler"])
def test_checked_step_reads_the_host_at_most_twice(counter: SyncCounter, amp: bool) -> None:
    """Control: the counter sees host reads; check_inputs=True makes exactly the labels' and the
    values' read (under a scaler only the labels': the scaler's check stays on the device)."""
    opt, closure, y = _setup("focal", FUSED[0] if FUSED else "reference", check=True, criterion=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if amp else None
    with counter:
        opt.step(closure, targets=y, grad_scaler=scaler)
    assert counter.seen.count("Tensor.tolist") == (1 if amp else 2), counter.seen
