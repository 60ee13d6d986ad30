"""``build_model``: every registered model builds, splits into features + head, and runs."""

from __future__ import annotations

import pytest
import torch

from focalsam_fast.models import MODELS, FeatureClassifier, build_model

CASES = {
    "resnet32": ({}, (2, 3, 32, 32)),
    "resnet50": ({}, (2, 3, 32, 32)),
    "digits_cnn": ({}, (2, 1, 8, 8)),
    "clip_vit_b16_fft": ({"config": "tiny", "random_weights": True}, (2, 3, 32, 32)),
    "clip_vit_b16_lift": ({"config": "tiny", "random_weights": True}, (2, 3, 32, 32)),
}


def test_every_model_is_covered() -> None:
    assert set(CASES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_and_forward(name: str, seed: int) -> None:
    options, shape = CASES[name]
    if name.startswith("clip"):
        options = {**options, "class_names": [f"class {k}" for k in range(7)]}
    model = build_model(name, 7, **options).eval()
    assert isinstance(model, FeatureClassifier) and model.head is model.fc
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.fc(model.features(x)))
        assert model(x).shape == (2, 7)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'vgg16'; valid: resnet32, resnet50"):
        build_model("vgg16", 10)
