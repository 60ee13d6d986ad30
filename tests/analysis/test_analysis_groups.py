"""Group selection, group data, and group restriction of the Hessian."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from focalsam_fast.analysis import AnalysisError
from focalsam_fast.analysis.groups import group_samples, select_groups
from focalsam_fast.train.errors import SetupError
from tests.analysis.helpers import dense_hessian, operator, small_cnn

GROUPS = {"head": [0, 1], "medium": [], "tail": [2, 3, 4]}


def test_select_groups_defaults_to_non_empty_groups_and_builds_class_groups() -> None:
    assert select_groups(GROUPS, 5) == {"head": [0, 1], "tail": [2, 3, 4]}
    assert select_groups(GROUPS, 5, groups=["tail"]) == {"tail": [2, 3, 4]}
    assert select_groups(GROUPS, 5, classes=[[3, 1], [4]]) == {"classes 3,1": [1, 3], "classes 4": [4]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": [[0, 7]]}, "unknown class 7: this data set has classes 0..4"),
        ({"groups": ["body"]}, "unknown group 'body'; valid: head, medium, tail"),
        ({"groups": ["medium"]}, "group 'medium' has no classes in this data set"),
        ({"groups": ["head"], "classes": [[0]]}, "either groups"),
    ],
)
def test_select_groups_errors_name_the_value_and_what_is_valid(kwargs: dict, message: str) -> None:
    with pytest.raises(AnalysisError, match=message) as info:
        select_groups(GROUPS, 5, **kwargs)
    assert "\n" not in str(info.value) and isinstance(info.value, SetupError)


def test_group_hessian_equals_the_hessian_on_the_groups_samples_alone() -> None:
    model, x, y = small_cnn(n=30)
    data = TensorDataset(x, y)
    classes = [1, 3]
    gx, gy = group_samples(data, classes)
    mask = (y == 1) | (y == 3)
    assert torch.equal(gx, x[mask]) and torch.equal(gy, y[mask])
    torch.testing.assert_close(
        operator(model, gx, gy).dense(), dense_hessian(model, x[mask], y[mask]), rtol=1e-9, atol=1e-11
    )


def test_group_subset_is_seeded_and_an_empty_group_is_an_error() -> None:
    x, y = torch.randn(100, 3), torch.arange(100) % 4
    data = TensorDataset(x, y)
    a = group_samples(data, [0, 2], samples=10, generator=torch.Generator().manual_seed(4))
    b = group_samples(data, [0, 2], samples=10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and len(a[1]) == 10 and set(a[1].tolist()) <= {0, 2}
    with pytest.raises(AnalysisError, match=r"tail \(classes \[7\]\) has no training samples"):
        group_samples(data, [7], name="tail")
    with pytest.raises(AnalysisError, match="--samples must be >= 1"):
        group_samples(data, [0], samples=0)
