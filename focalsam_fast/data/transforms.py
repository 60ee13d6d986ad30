"""Image transforms: CIFAR (docs/spec.md §7), ImageNet-style for ResNet-50, and CLIP preprocessing."""

from __future__ import annotations

from torchvision import transforms as T

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# OpenAI CLIP's preprocessing statistics (also open_clip's OPENAI_DATASET_MEAN/STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

TRANSFORM_PRESETS = ("cifar", "imagenet", "clip")


def build_transform(preset: str, train: bool, image_size: int | None = None) -> T.Compose:
    """PIL image -> normalised float tensor.

    ``cifar``: RandomCrop(32, padding 4) + horizontal flip when training; CIFAR mean/std.
    ``imagenet``: RandomResizedCrop + flip (train) or Resize(size*8/7) + CenterCrop (test), size 224.
    ``clip``: like ``imagenet`` with bicubic resizing and CLIP mean/std, size 224 by default
    (pass ``image_size`` for a small test ViT).
    """
    if preset == "cifar":
        size = image_size or 32
        ops: list = [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()] if train else []
        return T.Compose([*ops, T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    if preset in ("imagenet", "clip"):
        size = image_size or 224
        interp = T.InterpolationMode.BICUBIC if preset == "clip" else T.InterpolationMode.BILINEAR
        mean, std = (CLIP_MEAN, CLIP_STD) if preset == "clip" else (IMAGENET_MEAN, IMAGENET_STD)
        if train:
            ops = [T.RandomResizedCrop(size, interpolation=interp), T.RandomHorizontalFlip()]
        else:
            ops = [T.Resize(round(size * 8 / 7), interpolation=interp), T.CenterCrop(size)]
        return T.Compose([*ops, T.ToTensor(), T.Normalize(mean, std)])
    raise ValueError(f"unknown transform preset {preset!r}; valid: {', '.join(TRANSFORM_PRESETS)}")
