"""Models: ResNet-32, ResNet-50, a digits CNN and CLIP ViT-B/16 (FFT / LIFT) (SPEC §9)."""

from focalsam_fast.models.base import FeatureClassifier
from focalsam_fast.models.clip_backbone import CLIP_CONFIGS, TINY_CLIP_CONFIG, clip_tokenizer, create_clip
from focalsam_fast.models.clip_classifier import CLIP_MODES, ClipClassifier, text_head_weights
from focalsam_fast.models.digits_cnn import DigitsCNN
from focalsam_fast.models.heads import NormedLinear
from focalsam_fast.models.lift import AdaptFormer, lift_bottleneck_dim
from focalsam_fast.models.registry import MODELS, build_model
from focalsam_fast.models.resnet50 import ResNet50
from focalsam_fast.models.resnet_cifar import ResNetCifar, resnet32

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
