"""Reader for CIFAR exported to JPEG inside a tar archive (``<split>/<class>/NNNN.jpg``).

The layout is that of ``/work/shared/data/cifar10-jpeg.tar.xz`` (see its README): class folders
sorted by name give the label order (torchvision's CIFAR order), and NNNN is the image's index
within its class in the original files.  Members are read with :mod:`tarfile` and decoded with Pillow;
the decoded arrays can be cached as ``.npy`` files in a user-given directory.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "test")


@dataclass
class ImageArrays:
    """Decoded images (uint8 ``[N, H, W, 3]``), labels (int64 ``[N]``) and class names of one split.

    Samples are ordered by class, then by their number within the class.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]


def _cache_paths(archive: Path, cache_dir: Path, split: str) -> tuple[Path, Path, Path]:
    stem = f"{archive.name.split('.')[0]}-{archive.stat().st_size}-{split}"
    return (
        cache_dir / f"{stem}-images.npy",
        cache_dir / f"{stem}-labels.npy",
        cache_dir / f"{stem}-classes.txt",
    )


def _decode_archive(archive: Path) -> dict[str, ImageArrays]:
    found: dict[str, dict[tuple[str, str], np.ndarray]] = {s: {} for s in SPLITS}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in SPLITS:
                continue
            if not parts[2].lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            data = tar.extractfile(member).read()
            try:
                with Image.open(io.BytesIO(data)) as img:
                    found[parts[0]][(parts[1], parts[2])] = np.asarray(img.convert("RGB"))
            except OSError as exc:
                raise OSError(f"{archive}: member {member.name} is not a readable image ({exc})") from exc
    if not found["train"] or not found["test"]:
        raise ValueError(f"{archive}: expected members train/<class>/<n>.jpg and test/<class>/<n>.jpg")
    class_names = sorted({cls for cls, _ in found["train"]})
    label_of = {c: i for i, c in enumerate(class_names)}
    out = {}
    for split, items in found.items():
        unknown = {cls for cls, _ in items} - set(class_names)
        if unknown:
            raise ValueError(f"{archive}: {split} has classes absent from train: {sorted(unknown)}")
        keys = sorted(items, key=lambda key: (label_of[key[0]], key[1]))
        out[split] = ImageArrays(
            images=np.stack([items[k] for k in keys]),
            labels=np.array([label_of[cls] for cls, _ in keys], dtype=np.int64),
            class_names=class_names,
        )
    return out


def read_jpeg_archive(archive: str | Path, cache_dir: str | Path | None = None) -> dict[str, ImageArrays]:
    """Both splits of the archive as ``{'train': ImageArrays, 'test': ImageArrays}``.

    With ``cache_dir`` the decoded arrays are saved there on the first call and loaded on later
    ones (file names carry the archive's name and size).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(
            f"JPEG archive {archive} not found; pass the path of a tar archive with "
            "train/<class>/NNNN.jpg and test/<class>/NNNN.jpg members (e.g. cifar10-jpeg.tar.xz)"
        )
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None and all(p.is_file() for s in SPLITS for p in _cache_paths(archive, cache, s)):
        out = {}
        for split in SPLITS:
            img_p, lab_p, cls_p = _cache_paths(archive, cache, split)
            out[split] = ImageArrays(np.load(img_p), np.load(lab_p), cls_p.read_text().split("\n"))
        return out
    out = _decode_archive(archive)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for split, arrays in out.items():
            img_p, lab_p, cls_p = _cache_paths(archive, cache, split)
            np.save(img_p, arrays.images)
            np.save(lab_p, arrays.labels)
            cls_p.write_text("\n".join(arrays.class_names))
    return out
