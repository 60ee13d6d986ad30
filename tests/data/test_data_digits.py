"""The embedded long-tailed digits default: shape, split, and the long-tail problem under CE."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from focalsam_fast.data import build_dataset, group_accuracy, per_class_accuracy
from focalsam_fast.models import build_model


def test_digits_shape_and_split() -> None:
    data = build_dataset("digits_lt")
    x, y = data.train.tensors
    tx, ty = data.test.tensors
    assert x.shape == (304, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert data.class_counts == [124, 74, 44, 26, 16, 9, 5, 3, 2, 1]
    assert data.class_counts[0] / data.class_counts[-1] > 100 - 1e-9
    np.testing.assert_array_equal(np.bincount(y.numpy()), data.class_counts)
    np.testing.assert_array_equal(np.bincount(ty.numpy()), [50] * 10)  # balanced test split
    train_rows = {row.numpy().tobytes() for row in x}
    assert not any(row.numpy().tobytes() in train_rows for row in tx)  # disjoint (digits has no duplicates)
    assert data.groups == {"head": [0, 1], "medium": [2, 3, 4], "tail": [5, 6, 7, 8, 9]}
    # The test split does not depend on the imbalance ratio (taken before subsampling).
    torch.testing.assert_close(build_dataset("digits_lt", imb_ratio=10).test.tensors[0], tx)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny convolutions are ~20x slower with two intra-op threads on a loaded 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_plain_ce_shows_the_long_tail_problem(seed: int) -> None:
    """Measured over 10 seeds (focalsam_fast/data/digits.py): head 0.94-1.00, tail 0.38-0.60."""
    data = build_dataset("digits_lt")
    model = build_model("digits_cnn", 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(
        data.train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    for _ in range(40):
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    x, y = data.test.tensors
    with torch.no_grad():
        acc = group_accuracy(per_class_accuracy(model(x).argmax(1), y, 10), data.groups)
    assert acc["head"] > 0.9
    assert acc["tail"] < acc["head"] - 0.2, acc
