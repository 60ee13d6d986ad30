"""Models: ResNet-32, ResNet-50, a digits CNN and CLIP ViT-B/16 (FFT / LIFT) (docs/spec.md §9).

The CLIP names are imported on first use, so the package works without the optional open_clip.
"""

from importlib import import_module
from typing import Any

from focalsam_fast.models.base import FeatureClassifier
from focalsam_fast.models.digits_cnn import DigitsCNN
from focalsam_fast.models.heads import NormedLinear
from focalsam_fast.models.lift import AdaptFormer, lift_bottleneck_dim
from focalsam_fast.models.registry import MODELS, build_model
from focalsam_fast.models.resnet50 import ResNet50
from focalsam_fast.models.resnet_cifar import ResNetCifar, resnet32

_CLIP_NAMES = {
    "CLIP_CONFIGS": "clip_backbone",
    "TINY_CLIP_CONFIG": "clip_backbone",
    "clip_tokenizer": "clip_backbone",
    "create_clip": "clip_backbone",
    "CLIP_MODES": "clip_classifier",
    "ClipClassifier": "clip_classifier",
    "text_head_weights": "clip_classifier",
}


def __getattr__(name: str) -> Any:
    if name in _CLIP_NAMES:
        return getattr(import_module(f"focalsam_fast.models.{_CLIP_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLIP_CONFIGS",
    "CLIP_MODES",
    "MODELS",
    "TINY_CLIP_CONFIG",
    "AdaptFormer",
    "ClipClassifier",
    "DigitsCNN",
    "FeatureClassifier",
    "NormedLinear",
    "ResNet50",
    "ResNetCifar",
    "build_model",
    "clip_tokenizer",
    "create_clip",
    "lift_bottleneck_dim",
    "resnet32",
    "text_head_weights",
]
