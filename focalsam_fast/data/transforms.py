"""Image transforms of the released scripts, one named set per (data set, model family).

- ``cifar`` (CIFAR-LT, CNNs): RandomCrop(32, padding 4) + flip; test: none; CIFAR mean/std.
- ``imagenet`` (ImageNet-LT, CNNs): RandomResizedCrop(224) + flip + ColorJitter(0.4, 0.4, 0.4, 0);
  test: Resize(256) + CenterCrop(224); ImageNet mean/std.
- ``inat2018`` (iNaturalist 2018, CNNs): RandomResizedCrop(224) + flip; test: Resize(256) +
  CenterCrop(224); iNaturalist mean/std.
- ``clip`` (CIFAR-LT and ImageNet-LT, CLIP): RandomResizedCrop(224) + flip; test: Resize(224) +
  CenterCrop(224); CLIP mean/std.
- ``clip_inat2018`` (iNaturalist 2018, CLIP): RandomResizedCrop(224) + flip; test: Resize(256) +
  CenterCrop(224); CLIP mean/std.

Every resize is bilinear (torchvision's default, as the released scripts); "256" is
``size * 8 // 7`` for another ``image_size``.  :func:`transform_for` picks the set of a run
(docs/fidelity.md).
"""

from __future__ import annotations

from collections.abc import Callable

from torchvision import transforms as T

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INAT_MEAN = (0.466, 0.471, 0.380)
INAT_STD = (0.195, 0.194, 0.192)
# OpenAI CLIP's preprocessing statistics (also open_clip's OPENAI_DATASET_MEAN/STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

Ops = list[Callable]


def _cifar(size: int, train: bool) -> Ops:
    return [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()] if train else []


def _crop_flip(size: int) -> Ops:
    return [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]


def _resize_crop(resize: int, size: int) -> Ops:
    return [T.Resize(resize), T.CenterCrop(size)]


def _imagenet(size: int, train: bool) -> Ops:
    if train:
        return [*_crop_flip(size), T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0)]
    return _resize_crop(size * 8 // 7, size)


def _larger_test_resize(size: int, train: bool) -> Ops:
    return _crop_flip(size) if train else _resize_crop(size * 8 // 7, size)


def _clip(size: int, train: bool) -> Ops:
    return _crop_flip(size) if train else _resize_crop(size, size)


# name -> (geometric/colour ops builder (size, train), default size, mean, std)
TRANSFORM_SETS: dict[str, tuple[Callable[[int, bool], Ops], int, tuple, tuple]] = {
    "cifar": (_cifar, 32, CIFAR_MEAN, CIFAR_STD),
    "imagenet": (_imagenet, 224, IMAGENET_MEAN, IMAGENET_STD),
    "inat2018": (_larger_test_resize, 224, INAT_MEAN, INAT_STD),
    "clip": (_clip, 224, CLIP_MEAN, CLIP_STD),
    "clip_inat2018": (_larger_test_resize, 224, CLIP_MEAN, CLIP_STD),
}
TRANSFORM_PRESETS = tuple(TRANSFORM_SETS)

# (data set, CLIP model?) -> transform set; the embedded digits are arrays without image transforms.
TRANSFORM_FOR: dict[tuple[str, bool], str | None] = {
    ("cifar10_lt", False): "cifar",
    ("cifar100_lt", False): "cifar",
    ("imagenet_lt", False): "imagenet",
    ("inat2018", False): "inat2018",
    ("digits_lt", False): None,
    ("cifar10_lt", True): "clip",
    ("cifar100_lt", True): "clip",
    ("imagenet_lt", True): "clip",
    ("inat2018", True): "clip_inat2018",
}


def transform_for(dataset: str, clip: bool) -> str | None:
    """The transform set of ``dataset`` with a CLIP (``clip=True``) or another model; ``None`` for
    the embedded digits.  A combination without a set raises a one-line ``ValueError``."""
    try:
        return TRANSFORM_FOR[(dataset, clip)]
    except KeyError:
        family = "CLIP" if clip else "non-CLIP"
        valid = sorted({d for d, c in TRANSFORM_FOR if c == clip})
        raise ValueError(
            f"no image transforms for --dataset {dataset} with a {family} model; "
            f"valid data sets for it: {', '.join(valid)}"
        ) from None


def build_transform(preset: str, train: bool, image_size: int | None = None) -> T.Compose:
    """PIL image -> normalised float tensor with the set ``preset`` (see the module table) for
    training (random crops/flips) or testing; ``image_size`` replaces the set's size (small test
    images and ViTs)."""
    if preset not in TRANSFORM_SETS:
        raise ValueError(f"unknown transform preset {preset!r}; valid: {', '.join(TRANSFORM_SETS)}")
    ops, default_size, mean, std = TRANSFORM_SETS[preset]
    return T.Compose([*ops(image_size or default_size, train), T.ToTensor(), T.Normalize(mean, std)])
