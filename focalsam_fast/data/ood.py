"""Out-of-distribution test sets for ImageNet-LT models and the ImageNet-C corruption error.

* ImageNet-Sketch: ``root/<wnid>/*.JPEG``; ImageNetV2: ``root/<class index>/*.jpeg``.
* ImageNet-C: ``root/<corruption>/<severity>/<wnid>/*.JPEG`` (15 corruptions x 5 severities).
* CE_c = mean_s err(c, s) / AlexNet_err(c); mCE = mean of CE_c (Hendrycks & Dietterich 2019).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from focalsam_fast.data.alexnet_errors import ALEXNET_ERRORS, CORRUPTIONS, SEVERITIES
from focalsam_fast.data.integrity import ExpectedCounts, check_class_counts
from focalsam_fast.data.listfile import CorruptImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Sizes of the public releases over the 1,000 ImageNet classes: ImageNetV2 (matched frequency) has 10
# images per class; each ImageNet-C corruption/severity folder holds the 50,000 validation images (50
# per class); ImageNet-Sketch's per-class counts vary, so only every class's presence is checked.
OOD_COUNTS = {
    "sketch": ExpectedCounts(1000),
    "v2": ExpectedCounts(1000, per_class=10),
    "c": ExpectedCounts(1000, per_class=50),
}


def default_class_to_idx(folder_names: Sequence[str]) -> dict[str, int]:
    """Numeric folder names map to their value (ImageNetV2); others to their sorted position
    (WordNet ids sorted = the standard ImageNet label order, as torchvision's ``ImageFolder``)."""
    if all(name.isdigit() for name in folder_names):
        return {name: int(name) for name in folder_names}
    return {name: i for i, name in enumerate(sorted(folder_names))}


class ClassFolderDataset(Dataset):
    """Images in ``root/<class folder>/`` with labels from ``class_to_idx`` (default: above).

    Folders missing from a given ``class_to_idx`` raise ``KeyError`` naming the folder.  With
    ``expected`` (e.g. ``OOD_COUNTS['v2']``) the number of class folders and images per folder are
    checked (:class:`~focalsam_fast.data.integrity.DataIntegrityError` naming the folders).
    """

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        class_to_idx: Mapping[str, int] | None = None,
        expected: ExpectedCounts | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} not found (expected <root>/<class>/<image>)")
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not folders:
            raise FileNotFoundError(f"{self.root} has no class folders")
        mapping = dict(class_to_idx) if class_to_idx is not None else default_class_to_idx(folders)
        self.samples: list[tuple[Path, int]] = []
        counts: dict[str, int] = {}
        for folder in folders:
            if folder not in mapping:
                raise KeyError(f"{self.root / folder}: class folder not in class_to_idx")
            files = sorted(p for p in (self.root / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.samples.extend((p, mapping[folder]) for p in files)
            counts[folder] = len(files)
        if expected is not None:
            by_label = sorted(folders, key=mapping.__getitem__)
            check_class_counts(
                self.root,
                "test",
                [counts[f] for f in by_label],
                expected,
                "the folder is incompletely extracted or copied: extract the data set again",
                by_label,
            )
        self.targets = [label for _, label in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | Image.Image, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
        except OSError as exc:
            raise CorruptImageError(f"{path} cannot be read: {exc}") from exc
        return (self.transform(img) if self.transform is not None else img), label


def imagenet_c_sets(
    root: str | Path,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    class_to_idx: Mapping[str, int] | None = None,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    expected: ExpectedCounts | None = OOD_COUNTS["c"],
) -> Iterator[tuple[str, int, ClassFolderDataset]]:
    """``(corruption, severity, data set)`` for each ImageNet-C folder ``root/<corruption>/<severity>``,
    each checked against ``expected`` (default: 50 images in each of the 1,000 classes)."""
    for corruption in corruptions:
        for severity in severities:
            folder = Path(root) / corruption / str(severity)
            yield corruption, severity, ClassFolderDataset(folder, transform, class_to_idx, expected)


def corruption_errors(accuracy: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """ImageNet-C summary from top-1 accuracies (fractions) per corruption and severity.

    Returns ``mean_acc`` (over all given corruption/severity pairs), ``CE/<corruption>`` (mean error
    over severities / AlexNet's, as a fraction) and ``mCE`` (mean CE over the given corruptions).
    Corruptions without an AlexNet reference raise ``KeyError`` naming the valid ones.
    """
    unknown = set(accuracy) - set(ALEXNET_ERRORS)
    if unknown:
        raise KeyError(f"no AlexNet error for {sorted(unknown)}; valid: {', '.join(ALEXNET_ERRORS)}")
    out = {"mean_acc": float(np.mean([a for accs in accuracy.values() for a in accs]))}
    ces = []
    for corruption, accs in accuracy.items():
        ce = (1.0 - float(np.mean(accs))) / ALEXNET_ERRORS[corruption]
        out[f"CE/{corruption}"] = ce
        ces.append(ce)
    out["mCE"] = float(np.mean(ces))
    return out
