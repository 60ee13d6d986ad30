"""``build_model``: one entry point for every model of the project."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from focalsam_fast.models.clip_classifier import ClipClassifier

from focalsam_fast.models.digits_cnn import DigitsCNN
from focalsam_fast.models.resnet50 import ResNet50
from focalsam_fast.models.resnet_cifar import resnet32


def _clip(mode: str) -> Callable[..., nn.Module]:
    def build(
        num_classes: int,
        class_names: Sequence[str] | None = None,
        clip_weights: str | Path | None = None,
        random_weights: bool = False,
        config: str = "ViT-B-16",
        quick_gelu: bool = True,
        bottleneck: int | None = None,
    ) -> ClipClassifier:
        from focalsam_fast.models.clip_backbone import create_clip  # open_clip is an optional extra
        from focalsam_fast.models.clip_classifier import ClipClassifier

        if class_names is None or len(class_names) != num_classes:
            raise ValueError(f"CLIP models need class_names with {num_classes} entries (for the text head)")
        clip = create_clip(config, clip_weights, random_weights, quick_gelu)
        return ClipClassifier(clip, class_names, mode=mode, bottleneck=bottleneck)

    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet32": resnet32,
    "resnet50": ResNet50,
    "digits_cnn": DigitsCNN,
    "clip_vit_b16_fft": _clip("fft"),
    "clip_vit_b16_lift": _clip("lift"),
}


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a model by name (see ``MODELS``); unknown names raise ``ValueError`` listing them.

    Options: ``resnet32(normed=False)``; ``resnet50(weights=None, normed=False)``;
    ``digits_cnn(channels=16)``; ``clip_vit_b16_fft`` / ``clip_vit_b16_lift(class_names,
    clip_weights=None, random_weights=False, config='ViT-B-16' | 'tiny', quick_gelu=True,
    bottleneck=None)``.  Every model has ``features(x)`` and the head ``fc`` (alias ``head``).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes, **options)
