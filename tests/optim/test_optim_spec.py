"""docs/spec.md §10 vectors and every optimizer against the independent transcription (float64)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spec_transcription import ccsam_step, focal_weights, sam_like_step

from focalsam_fast import CCSAM, SAM, FocalSAM, ImbSAM, focal_coefficients
from focalsam_fast.testing import FP64_ATOL, SmallCNN

W0 = [[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]]
X = [[1, 2], [0.5, -1], [-1.5, 0.3], [2, 0.1]]
Y = [0, 0, 1, 2]
VECTORS = [
    (
        (2.0, 0.5),
        [0.4985327238, -0.1779348854, 0.0426979265, 0.2867016015, -0.3412306503, 0.1912332839],
        1.4472596407,
    ),
    (
        (0.0, 1.0),
        [0.4998923898, -0.1766502523, 0.0394530825, 0.2850698759, -0.3393454723, 0.1915803764],
        None,
    ),
    (
        (2.0, 0.0),
        [0.4989118282, -0.1779468351, 0.0433212621, 0.2866626650, -0.3422330903, 0.1912841701],
        1.3719429360,
    ),
]


def _linear() -> torch.nn.Linear:
    lin = torch.nn.Linear(2, 3, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W0, dtype=torch.float64))
    return lin


@pytest.mark.parametrize(("gl", "w1", "loss"), VECTORS)
def test_spec_vectors(gl: tuple[float, float], w1: list[float], loss: float | None) -> None:
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y)
    lin = _linear()
    opt = FocalSAM(lin.parameters(), class_counts=[100, 30, 5], gamma=gl[0], lam=gl[1], rho=0.1, lr=0.1)
    out = opt.step(lambda: F.cross_entropy(lin(x), y, reduction="none"), targets=y)
    torch.testing.assert_close(
        lin.weight.detach().flatten(), torch.tensor(w1, dtype=torch.float64), rtol=0, atol=FP64_ATOL
    )
    if loss is not None:
        assert abs(out.loss.item() - loss) < FP64_ATOL


def test_spec_vector_gamma0_lam1_is_sam() -> None:
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y)
    lin = _linear()
    SAM(lin.parameters(), rho=0.1, lr=0.1).step(lambda: F.cross_entropy(lin(x), y))
    torch.testing.assert_close(
        lin.weight.detach().flatten(),
        torch.tensor(VECTORS[1][1], dtype=torch.float64),
        rtol=0,
        atol=FP64_ATOL,
    )


def test_coefficient_vector() -> None:
    c = focal_coefficients([100, 30, 5], gamma=2, lam=0.5)
    torch.testing.assert_close(
        c, torch.tensor([0.0336077, 0.3024691, 0.4636488], dtype=torch.float64), rtol=0, atol=5e-8
    )


COUNTS = [200, 90, 40, 12, 3]
HYPER = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3}


def _case(method: str, model: torch.nn.Module, impl: str):
    """(optimizer, closure factory, transcription step) for one method."""
    common = {"impl": impl, **HYPER}
    if method == "sam":
        opt = SAM(model.parameters(), rho=0.3, **common)

        def ref(m, x, y, bufs):
            sam_like_step(
                m,
                x,
                y,
                bufs,
                w_keep=torch.zeros(len(y)),
                w_sharp=torch.ones(len(y)),
                rho=0.3,
                lr=HYPER["lr"],
                momentum=0.9,
                wd=HYPER["weight_decay"],
            )

        return opt, ref
    if method == "focalsam":
        opt = FocalSAM(model.parameters(), class_counts=COUNTS, gamma=1.7, lam=0.6, rho=0.3, **common)

        def ref(m, x, y, bufs):
            c = focal_weights(COUNTS, y, 1.7, 0.6)
            sam_like_step(
                m,
                x,
                y,
                bufs,
                w_keep=1 - c,
                w_sharp=c,
                rho=0.3,
                lr=HYPER["lr"],
                momentum=0.9,
                wd=HYPER["weight_decay"],
            )

        return opt, ref
    if method == "imbsam":
        opt = ImbSAM(
            model.parameters(), class_counts=COUNTS, tail_threshold=20, tail_weight=2.0, rho=0.3, **common
        )

        def ref(m, x, y, bufs):
            tail = (torch.tensor(COUNTS)[y] < 20).double()
            sam_like_step(
                m,
                x,
                y,
                bufs,
                w_keep=1 - tail,
                w_sharp=2.0 * tail,
                rho=0.3,
                lr=HYPER["lr"],
                momentum=0.9,
                wd=HYPER["weight_decay"],
            )

        return opt, ref
    opt = CCSAM(model.parameters(), head=model.fc, class_counts=COUNTS, noise_ratio=0.05, beta=0.4, **common)

    def ref(m, x, y, bufs):
        ccsam_step(
            m,
            x,
            y,
            bufs,
            counts=COUNTS,
            nu=0.05,
            beta=0.4,
            lr=HYPER["lr"],
            momentum=0.9,
            wd=HYPER["weight_decay"],
        )

    return opt, ref


def _closure(method: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    if method == "ccsam":
        return lambda: model.features(x)
    return lambda: (F.cross_entropy(model(x), y, reduction="none"), None)


@pytest.mark.parametrize("impl", ["reference", "foreach"])
@pytest.mark.parametrize("method", ["sam", "focalsam", "imbsam", "ccsam"])
def test_optimizer_matches_spec_transcription(method: str, impl: str, seed: int) -> None:
    torch.set_default_dtype(torch.float64)
    try:
        model = SmallCNN(num_classes=len(COUNTS)).double()
        oracle = copy.deepcopy(model)
        opt, ref = _case(method, model, impl)
        bufs: dict[int, torch.Tensor] = {}
        for _ in range(4):
            x = torch.randn(16, 3, 5, 5)
            y = torch.randint(0, len(COUNTS), (16,))
            opt.step(_closure(method, model, x, y), targets=y)
            ref(oracle, x, y, bufs)
        for (name, a), b in zip(model.state_dict().items(), oracle.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=FP64_ATOL, msg=f"{name} (seed {seed})")
    finally:
        torch.set_default_dtype(torch.float32)
