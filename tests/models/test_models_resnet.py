"""ResNet-32 (docs/spec.md §9), the cosine head, ResNet-50 and the digits CNN."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50 as tv_resnet50

from focalsam_fast.models import DigitsCNN, NormedLinear, ResNet50, resnet32


@pytest.mark.parametrize(("num_classes", "params"), [(10, 464_154), (100, 470_004)])
def test_resnet32_parameter_count(num_classes: int, params: int) -> None:
    model = resnet32(num_classes)
    assert sum(p.numel() for p in model.parameters()) == params  # ~0.46M
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 31 and all(c.bias is None for c in convs)  # 1 + 3 x 5 x 2 convs, + fc = 32 layers


def test_resnet32_features_head_split(seed: int) -> None:
    model = resnet32(10).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (3, 64)
    torch.testing.assert_close(model(x), model.fc(feats))
    assert model.head is model.fc


def test_option_a_shortcut_is_subsample_and_zero_pad(seed: int) -> None:
    block = resnet32(10).layer2[0]
    x = torch.randn(2, 16, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    assert sum(isinstance(m, torch.nn.Conv2d) for m in block.modules()) == 2  # no projection conv


def test_kaiming_normal_init(seed: int) -> None:
    model = resnet32(10)
    w = model.layer3[4].conv2.weight  # fan_in = 64 * 9
    assert w.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)


def test_normed_head(seed: int) -> None:
    model = resnet32(10, normed=True).eval()
    assert isinstance(model.fc, NormedLinear)
    x = torch.randn(4, 3, 32, 32)
    logits = model(x)
    expected = F.normalize(model.features(x), dim=1) @ F.normalize(model.fc.weight, dim=1).T
    torch.testing.assert_close(logits, expected)
    assert logits.abs().max() <= 1 + 1e-6
    head = NormedLinear(8, 5, scale=25.0)
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(5))
    z = torch.randn(3, 8)
    torch.testing.assert_close(head(z), 25 * F.normalize(z, dim=1) @ head.weight.T)


def test_resnet50_split_and_local_weights(tmp_path: Path, seed: int) -> None:
    ref = tv_resnet50(weights=None, num_classes=7).eval()
    path = tmp_path / "r50.pth"
    torch.save(ref.state_dict(), path)
    model = ResNet50(num_classes=7, weights=path).eval()  # head shape matches: loaded too
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.features(x).shape == (2, 2048)
        torch.testing.assert_close(model(x), ref(x))
    other = ResNet50(num_classes=5, weights=path)  # backbone loaded, fresh 5-way head kept
    torch.testing.assert_close(other.body.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
    assert other.fc.weight.shape == (5, 2048)
    with pytest.raises(FileNotFoundError, match="missing"):
        ResNet50(weights=tmp_path / "missing.pth")


def test_digits_cnn(seed: int) -> None:
    model = DigitsCNN(10)
    x = torch.randn(5, 1, 8, 8)
    assert model.features(x).shape == (5, 32)
    assert model(x).shape == (5, 10)
