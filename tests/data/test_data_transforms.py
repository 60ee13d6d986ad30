"""Image transforms per preset (docs/fidelity.md): every training preset's full train and test list,
types and parameters, against lists written out here from the released scripts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from focalsam_fast.data.transforms import TRANSFORM_SETS, build_transform, transform_for
from focalsam_fast.train.config import PRESETS, is_clip, resolve_config

BILINEAR = T.InterpolationMode.BILINEAR
CIFAR = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INAT = ((0.466, 0.471, 0.380), (0.195, 0.194, 0.192))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def _expected(name: str) -> tuple[list, list]:
    """(training ops, test ops) of the released scripts, written independently of the package."""
    crop_flip = [T.RandomResizedCrop(224), T.RandomHorizontalFlip()]
    sets = {
        "cifar": ([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()], [], CIFAR),
        "imagenet": (
            [*crop_flip, T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0)],
            [T.Resize(256), T.CenterCrop(224)],
            IMAGENET,
        ),
        "inat2018": (crop_flip, [T.Resize(256), T.CenterCrop(224)], INAT),
        "clip": (crop_flip, [T.Resize(224), T.CenterCrop(224)], CLIP),
        "clip_inat2018": (crop_flip, [T.Resize(256), T.CenterCrop(224)], CLIP),
    }
    train, test, (mean, std) = sets[name]
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    return [*train, *tail], [*test, *tail]


# Every preset of focalsam_fast.train.config.PRESETS -> its transform set (None: the digits arrays).
PRESET_TRANSFORMS = {
    "digits": None,
    "cifar10_resnet32": "cifar",
    "cifar100_resnet32": "cifar",
    "imagenet_lt_resnet50": "imagenet",
    "inat2018_resnet50": "inat2018",
    "cifar10_clip_lift": "clip",
    "cifar10_clip_fft": "clip",
    "cifar100_clip_lift": "clip",
    "cifar100_clip_fft": "clip",
    "imagenet_lt_clip_lift": "clip",
    "imagenet_lt_clip_fft": "clip",
    "inat2018_clip_lift": "clip_inat2018",
    "inat2018_clip_fft": "clip_inat2018",
}


def describe(ops: list) -> list[tuple[str, dict[str, Any]]]:
    """Type and every public attribute (the constructor's parameters as torchvision stores them)."""

    def params(op: Any) -> dict[str, Any]:
        return {k: v for k, v in vars(op).items() if not k.startswith("_") and k != "training"}

    return [(type(op).__name__, params(op)) for op in ops]


def test_transforms_every_preset_is_pinned() -> None:
    assert set(PRESET_TRANSFORMS) == set(PRESETS)


@pytest.mark.parametrize("preset", list(PRESET_TRANSFORMS))
def test_transforms_full_list_per_preset(preset: str) -> None:
    cfg = resolve_config(preset)
    name = transform_for(cfg.dataset, is_clip(cfg.model))
    assert name == PRESET_TRANSFORMS[preset]
    if name is None:
        return
    train, test = _expected(name)
    assert describe(build_transform(name, True).transforms) == describe(train)
    assert describe(build_transform(name, False).transforms) == describe(test)


@pytest.mark.parametrize("name", list(TRANSFORM_SETS))
def test_transforms_resize_bilinear_and_parameters_spelled_out(name: str) -> None:
    """Beyond the comparison with torchvision's defaults: the values the scripts name, as numbers."""
    for train in (True, False):
        for op in build_transform(name, train).transforms:
            if isinstance(op, (T.Resize, T.RandomResizedCrop)):
                assert op.interpolation == BILINEAR
            if isinstance(op, T.RandomResizedCrop):
                assert op.size == (224, 224) and op.scale == (0.08, 1.0)
            if isinstance(op, T.ColorJitter):
                assert (op.brightness, op.contrast, op.saturation, op.hue) == ((0.6, 1.4),) * 3 + (None,)
    sizes = [op.size for op in build_transform(name, False).transforms if isinstance(op, T.Resize)]
    assert sizes == {"cifar": [], "clip": [224]}.get(name, [256])


def test_transforms_only_imagenet_jitters() -> None:
    jitter = {
        name
        for name in TRANSFORM_SETS
        if any(isinstance(op, T.ColorJitter) for op in build_transform(name, True).transforms)
    }
    assert jitter == {"imagenet"}


@pytest.mark.parametrize(
    ("name", "size", "resize"),
    [("clip", 32, 32), ("clip_inat2018", 32, 36), ("imagenet", 16, 18), ("cifar", 8, None)],
)
def test_transforms_image_size_output(name: str, size: int, resize: int | None, seed: int) -> None:
    img = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    for train in (True, False):
        tf = build_transform(name, train, image_size=size)
        if name == "cifar" and not train:
            continue  # CIFAR test images are used as they are
        assert tf(img).shape == (3, size, size) and tf(img).dtype == torch.float32
    resizes = [op.size for op in build_transform(name, False, size).transforms if isinstance(op, T.Resize)]
    assert resizes == ([] if resize is None else [resize])


def test_transforms_test_values_are_normalised_pixels(seed: int) -> None:
    """CLIP test preprocessing of an image already 224 wide: Resize/CenterCrop keep it, then the CLIP
    normalisation."""
    arr = np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    x = build_transform("clip", False)(Image.fromarray(arr))
    mean, std = (torch.tensor(v)[:, None, None] for v in CLIP)
    torch.testing.assert_close(x, (torch.from_numpy(arr).permute(2, 0, 1).float() / 255 - mean) / std)


def test_transforms_unknown_names_and_combinations() -> None:
    with pytest.raises(ValueError) as info:
        build_transform("mnist", train=True)
    assert str(info.value) == (
        "unknown transform preset 'mnist'; valid: cifar, imagenet, inat2018, clip, clip_inat2018"
    )
    with pytest.raises(ValueError) as info:
        transform_for("digits_lt", True)
    assert str(info.value) == (
        "no image transforms for --dataset digits_lt with a CLIP model; valid data "
        "sets for it: cifar100_lt, cifar10_lt, imagenet_lt, inat2018"
    )
    with pytest.raises(ValueError, match="no image transforms for --dataset places_lt with a non-CLIP model"):
        transform_for("places_lt", False)
