"""Filter-normalised directions and loss landscapes."""

from __future__ import annotations

import pytest
import torch

from focalsam_fast.analysis import filter_normalized_direction, landscape_1d, landscape_2d
from tests.analysis.helpers import linear_softmax, operator, small_cnn


def test_direction_filters_have_the_weights_filter_norms_and_1d_parameters_are_zero() -> None:
    model, x, y = small_cnn()
    op = operator(model, x, y)
    d = filter_normalized_direction(op, torch.Generator().manual_seed(0))
    for p, dp in zip(op.params, op.split(d)):
        if p.dim() <= 1:
            assert bool((dp == 0).all())
        else:
            torch.testing.assert_close(
                dp.reshape(len(dp), -1).norm(dim=1),
                p.detach().reshape(len(p), -1).norm(dim=1),
                rtol=1e-10,
                atol=0,
            )
    torch.testing.assert_close(d, filter_normalized_direction(op, torch.Generator().manual_seed(0)))


def test_landscapes_are_the_group_loss_on_the_grid() -> None:
    model, x, y = linear_softmax()
    op = operator(model, x, y)
    d1, d2 = (filter_normalized_direction(op, torch.Generator().manual_seed(s)) for s in (1, 2))
    line = landscape_1d(op, d1, span=0.5, points=5)
    grid = landscape_2d(op, d1, d2, span=0.5, points=3)
    assert line.coords == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5])
    assert line.loss[2] == pytest.approx(op.loss_at(), rel=1e-12)
    assert grid.loss[1][1] == pytest.approx(op.loss_at(), rel=1e-12)
    theta = op.flat_params()
    with torch.no_grad():
        model.weight.add_(-0.5 * op.split(d1)[0] + 0.5 * op.split(d2)[0])
        expected = torch.nn.functional.cross_entropy(model(x), y).item()
    assert grid.loss[2][0] == pytest.approx(expected, rel=1e-12)  # row b = +0.5, column a = -0.5
    torch.testing.assert_close(op.flat_params(), theta)  # the operator's weights are never moved
