"""Triton focal loss on bad labels and non-finite logits, against ``kernels.reference.focal_loss``.

* a label outside ``[0, C)`` is never used as an index (the old kernel read out of bounds, which
  on a GPU is an illegal address that kills the context); its row's loss and gradients are NaN,
  the other rows are unaffected;
* NaN / +inf / -inf / all -inf rows follow ``torch.logsumexp`` / ``torch.softmax`` of the adjusted
  logits, compared with ``assert_close(..., equal_nan=True)``.  With C = 5000 a row spans two
  chunks of the online logsumexp (4096 columns each), so the pathological values sit in either
  chunk, including a first chunk that is entirely -inf.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import Tensor

pytest.importorskip("triton")

from focalsam_fast.kernels import reference as ref
from focalsam_fast.testing import assert_focal_loss_close

tk = importlib.import_module("focalsam_fast.kernels.triton")
loss_mod = importlib.import_module("focalsam_fast.kernels.triton.loss")

INF = float("inf")
NAN = float("nan")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> torch.device:
    dev = torch.device(request.param)
    ok, why = tk.is_available(dev)
    if not ok:
        pytest.skip(why)
    return dev


def _tables(n_cls: int, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """Random LDAM-like tables: scale, bias and a per-class margin all non-trivial, plus weights."""
    kw = dict(dtype=dtype, device=device)
    return dict(
        coeff=torch.rand(n_cls, **kw),
        scale=torch.rand(n_cls, **kw) + 0.5,
        bias=torch.randn(n_cls, **kw),
        margin=torch.rand(n_cls, **kw),
        weight=torch.rand(n_cls, **kw) + 0.5,
    )


def _assert_matches_reference(
    logits, targets, tables, grad_scale: float | None = None
) -> tuple[torch.Tensor, ...]:
    got = tk.focal_loss(logits, targets, **tables, grad_scale=grad_scale)
    want = ref.focal_loss(logits, targets, **tables, grad_scale=grad_scale)
    assert_focal_loss_close(got, want, equal_nan=True, scale=1.0 if grad_scale is None else grad_scale)
    return got


# --------------------------------------------------------------------------- labels outside [0, C)


@pytest.mark.parametrize("label_dtype", [torch.int64, torch.int32])
def test_labels_outside_the_classes_give_nan_rows_only(
    device: torch.device, label_dtype: torch.dtype
) -> None:
    n_cls, batch = 50, 12
    logits = 3 * torch.randn(batch, n_cls, device=device)
    targets = torch.randint(0, n_cls, (batch,), device=device)
    big = 2**40 if label_dtype == torch.int64 else 2**31 - 1
    bad = torch.tensor([1, 4, 5, 9, 11], device=device)
    targets[bad] = torch.tensor([-1, n_cls, n_cls + 7, big, -big], device=device)
    targets = targets.to(label_dtype)
    tables = _tables(n_cls, torch.float32, device)
    losses, grad_a, grad_b = _assert_matches_reference(logits, targets, tables, grad_scale=256.0)
    is_bad = torch.zeros(batch, dtype=torch.bool, device=device)
    is_bad[bad] = True
    assert losses[is_bad].isnan().all() and grad_a[is_bad].isnan().all() and grad_b[is_bad].isnan().all()
    assert losses[~is_bad].isfinite().all() and grad_a[~is_bad].isfinite().all()
    assert grad_b[~is_bad].isfinite().all()


def test_a_bad_label_is_never_used_as_an_index(device: torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables are passed as views into a larger buffer whose neighbours are NaN: an
    out-of-bounds gather would turn the good rows NaN too (the interpreter does not fault)."""
    n_cls = 20
    logits = torch.randn(4, n_cls, device=device)
    targets = torch.tensor([3, n_cls, -1, 7], device=device)
    tables = _tables(n_cls, torch.float32, device)
    padded = {}
    for name, t in tables.items():
        buf = torch.full((3 * n_cls,), NAN, device=device)
        buf[n_cls : 2 * n_cls] = t
        padded[name] = buf[n_cls : 2 * n_cls]
    losses, grad_a, _ = _assert_matches_reference(logits, targets, padded)
    assert losses[[0, 3]].isfinite().all() and grad_a[[0, 3]].isfinite().all()
    assert losses[[1, 2]].isnan().all()


def test_targets_are_validated_on_the_host(device: torch.device) -> None:
    logits = torch.randn(3, 6, device=device)
    labels = torch.zeros(3, dtype=torch.int64, device=device)
    tables = _tables(6, torch.float32, device)
    with pytest.raises(ValueError, match=r"^targets must have shape \(3,\) to match logits, got \(2,\)$"):
        tk.focal_loss(logits, labels[:2], **tables)
    with pytest.raises(TypeError, match=r"^targets must hold integer class indices, got dtype torch.float32"):
        tk.focal_loss(logits, labels.float(), **tables)
    with pytest.raises(ValueError, match=r"^margin must have shape \(6,\) \(one entry per class\), got"):
        tk.focal_loss(logits, labels, **{**tables, "margin": tables["margin"][:5]})
    with pytest.raises(ValueError, match=r"^logits must be \[B, C\], got shape \(3, 6, 1\)$"):
        tk.focal_loss(logits[..., None], labels, **tables)
    with pytest.raises(ValueError, match=r"^logits must have at least one class column, got shape \(3, 0\)$"):
        tk.focal_loss(logits[:, :0], labels, **{k: t[:0] for k, t in tables.items()})


# --------------------------------------------------------------------------- NaN / inf logits


def _pathological_rows(n_cls: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """One row per case (row 0 is ordinary); columns on both sides of the 4096-column chunk edge."""
    late = n_cls - 3  # in the second chunk when n_cls > 4096
    logits = 4 * torch.randn(13, n_cls, dtype=dtype, device=device)
    targets = torch.randint(0, n_cls, (13,), device=device)
    logits[1, late] = NAN  # a NaN: row NaN
    logits[2, 1], targets[2] = INF, 2  # one +inf (label elsewhere): loss inf, softmax NaN
    logits[3, [0, late]], targets[3] = INF, 2  # two +inf
    logits[4, 5], targets[4] = INF, 5  # +inf at the label: inf - inf = NaN loss
    logits[5, ::3] = -INF  # scattered -inf, finite max: an ordinary row
    targets[5] = 1
    logits[6] = -INF  # all -inf: logsumexp -inf, loss NaN
    logits[7, : min(4096, n_cls - 2)] = -INF  # first chunk entirely -inf, finite entries after
    targets[7] = n_cls - 1
    logits[8, 2], targets[8] = -INF, 2  # -inf at the label: loss +inf, finite gradients
    logits[9, late], targets[9] = INF, 0  # +inf only in the last chunk
    logits[10] = 1e4  # large equal logits: no overflow in exp(z' - M)
    logits[11, [1, late]] = torch.tensor([INF, NAN], dtype=dtype)  # +inf and NaN: NaN, not inf
    logits[12] = -INF  # -inf everywhere but one NaN: NaN
    logits[12, late] = NAN
    return logits, targets


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_cls", [10, 5000])
def test_non_finite_logits_follow_torch_logsumexp_and_softmax(
    device: torch.device, dtype: torch.dtype, n_cls: int
) -> None:
    logits, targets = _pathological_rows(n_cls, dtype, device)
    tables = _tables(n_cls, dtype, device)
    losses, grad_a, grad_b = _assert_matches_reference(logits, targets, tables, grad_scale=2.0**10)
    assert losses[[0, 5, 7, 10]].isfinite().all()
    assert losses[[1, 4, 6, 11, 12]].isnan().all()
    assert (losses[[2, 3, 8, 9]] == INF).all()
    for rows in ([1, 2, 3, 4, 6, 9, 11, 12], [0, 5, 7, 8, 10]):
        check = torch.isnan if rows[0] == 1 else torch.isfinite
        assert check(grad_a[rows]).all() and check(grad_b[rows]).all()


def test_zero_scale_times_an_infinite_logit_is_a_nan_row(device: torch.device) -> None:
    """``a_j z_j = 0 * inf`` is NaN in the adjusted logits: that row only is NaN."""
    logits = torch.randn(3, 40, device=device)
    targets = torch.randint(0, 40, (3,), device=device)
    logits[1, 4] = INF
    logits[2, 4] = -INF
    tables = _tables(40, torch.float32, device)
    tables["scale"][4] = 0.0
    losses, grad_a, _ = _assert_matches_reference(logits, targets, tables)
    assert losses[0].isfinite() and losses[1:].isnan().all() and grad_a[1:].isnan().all()


def test_chunked_rows_use_the_online_path(monkeypatch: pytest.MonkeyPatch, device: torch.device) -> None:
    """With 64-column chunks a 300-class row takes five chunks: every transition of the online
    max (from -inf, to +inf, NaN late in the row) is exercised on small, fast rows."""
    monkeypatch.setattr(loss_mod, "MAX_BLOCK_C", 64)
    n_cls = 300
    logits, targets = _pathological_rows(n_cls, torch.float64, device)
    logits[7, :200] = -INF
    _assert_matches_reference(logits, targets, _tables(n_cls, torch.float64, device))
