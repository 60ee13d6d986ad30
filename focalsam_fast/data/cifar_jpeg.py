"""Reader for CIFAR exported to JPEG inside a tar archive (``<split>/<class>/NNNN.jpg``).

The layout is that of ``/work/shared/data/cifar10-jpeg.tar.xz`` (see its README): class folders
sorted by name give the label order (torchvision's CIFAR order), and NNNN is the image's index
within its class in the original files.  Members are read with :mod:`tarfile` and decoded with Pillow;
the decoded arrays can be cached as ``.npy`` files in a user-given directory.  Every split is checked
against the expected per-class counts (:mod:`focalsam_fast.data.integrity`), so a damaged or
truncated archive fails instead of giving a smaller data set.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from focalsam_fast.data.archive import iter_tar_files
from focalsam_fast.data.integrity import ExpectedCounts, check_class_counts, first_examples, integrity_error

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FIX = "re-download the archive (or re-create it with every <split>/<class>/NNNN.jpg member)"


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


def _number_detail(by_class: list[list[str]], expected: int, k: int) -> str:
    """Which files ``NNNN.<ext>`` (NNNN in ``0..expected-1``, once each) class ``k`` lacks or has too many."""
    stems = [f.split(".")[0] for f in by_class[k]]
    numbers = Counter(int(s) for s in stems if s.isdigit())
    missing = [f"{i:04d}" for i in range(expected) if i not in numbers]
    extra = [
        f for f, s in zip(by_class[k], stems) if not s.isdigit() or int(s) >= expected or numbers[int(s)] > 1
    ]
    parts = [f"missing {first_examples(missing)}"] if missing else []
    return "; ".join(parts + ([f"unexpected {first_examples(extra)}"] if extra else []))


def _decode_archive(archive: Path) -> tuple[dict[str, ImageArrays], dict[str, list[list[str]]]]:
    """Both splits, and each split's file names per class (for the integrity message)."""
    found: dict[str, dict[tuple[str, str], np.ndarray]] = {s: {} for s in SPLITS}
    unreadable, misshapen, ignored = [], [], []
    shape = None
    for name, data in iter_tar_files(archive, FIX):
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in SPLITS or not parts[2].lower().endswith(IMAGE_SUFFIXES):
            ignored.append(name)
            continue
        try:
            with Image.open(io.BytesIO(data)) as img:
                image = np.asarray(img.convert("RGB"))
        except (OSError, SyntaxError, ValueError):
            unreadable.append(name)
            continue
        shape = image.shape if shape is None else shape
        if image.shape != shape:
            misshapen.append(f"{name} ({image.shape[1]}x{image.shape[0]})")
        found[parts[0]][(parts[1], parts[2])] = image
    problems = []
    if unreadable:
        listed = first_examples(unreadable)
        problems.append(f"{len(unreadable):,} member(s) are not readable images: {listed}")
    if misshapen:
        first = f"{shape[1]}x{shape[0]}"
        problems.append(
            f"{len(misshapen):,} image(s) differ in size from the first ({first}): "
            f"{first_examples(misshapen)}"
        )
    if problems:
        raise integrity_error(archive, "; ".join(problems), FIX)
    missing = [s for s in SPLITS if not found[s]]
    if missing:
        seen = f"; files found: {first_examples(ignored)}" if ignored else "; it holds no files"
        raise integrity_error(
            archive,
            f"no {' or '.join(missing)} images: expected members <split>/<class>/NNNN.jpg{seen}",
            "pass an archive in this layout (e.g. cifar10-jpeg.tar.xz)",
        )
    class_names = sorted({cls for items in found.values() for cls, _ in items})
    label_of = {c: i for i, c in enumerate(class_names)}
    out, files = {}, {}
    for split, items in found.items():
        keys = sorted(items, key=lambda key: (label_of[key[0]], key[1]))
        out[split] = ImageArrays(
            images=np.stack([items[k] for k in keys]),
            labels=np.array([label_of[cls] for cls, _ in keys], dtype=np.int64),
            class_names=class_names,
        )
        files[split] = [[] for _ in class_names]
        for cls, f in keys:
            files[split][label_of[cls]].append(f)
    return out, files


def check_splits(
    source: Path,
    splits: Mapping[str, ImageArrays],
    expected: Mapping[str, ExpectedCounts] | None,
    fix: str,
    files: Mapping[str, list[list[str]]] | None = None,
) -> None:
    """:func:`check_class_counts` on every split.

    ``expected=None`` asks only for balance: every class of a split as large as its largest one
    (CIFAR is balanced).  ``files`` (per split, the file names of each class) lets the message name
    the missing and unexpected ``NNNN`` files.
    """
    for split, arrays in splits.items():
        num_classes = len(arrays.class_names)
        counts = np.bincount(arrays.labels, minlength=num_classes).tolist()
        want = expected[split] if expected is not None else ExpectedCounts(num_classes, per_class=max(counts))
        detail = None
        if files is not None and want.per_class is not None:
            detail = partial(_number_detail, files[split], want.per_class)
        check_class_counts(source, split, counts, want, fix, arrays.class_names, detail)


def _load_cache(archive: Path, cache: Path) -> dict[str, ImageArrays]:
    out = {}
    for split in SPLITS:
        img_p, lab_p, cls_p = _cache_paths(archive, cache, split)
        try:
            out[split] = ImageArrays(np.load(img_p), np.load(lab_p), cls_p.read_text().split("\n"))
        except (OSError, ValueError, EOFError) as exc:
            raise integrity_error(
                img_p.parent,
                f"cached arrays of {archive} are damaged ({exc})",
                f"delete {img_p.name}, {lab_p.name} and {cls_p.name} (they are rebuilt from the archive)",
            ) from exc
    return out


def read_jpeg_archive(
    archive: str | Path,
    cache_dir: str | Path | None = None,
    expected: Mapping[str, ExpectedCounts] | None = None,
) -> dict[str, ImageArrays]:
    """Both splits of the archive as ``{'train': ImageArrays, 'test': ImageArrays}``.

    ``expected`` (per split, e.g. ``integrity.CIFAR_COUNTS[10]``) is checked on what was read;
    without it every class of a split must hold as many images as the largest one.  Damage,
    truncation and missing or extra images raise :class:`DataIntegrityError`.  With ``cache_dir``
    the decoded arrays are saved there on the first call (after the check) and loaded on later
    ones (file names carry the archive's name and size; loaded arrays are checked too).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(
            f"JPEG archive {archive} not found; pass the path of a tar archive with "
            "train/<class>/NNNN.jpg and test/<class>/NNNN.jpg members (e.g. cifar10-jpeg.tar.xz)"
        )
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None and all(p.is_file() for s in SPLITS for p in _cache_paths(archive, cache, s)):
        out = _load_cache(archive, cache)
        check_splits(cache, out, expected, f"delete the cached arrays of {archive} in {cache} and reload")
        return out
    out, files = _decode_archive(archive)
    check_splits(archive, out, expected, FIX, files)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for split, arrays in out.items():
            img_p, lab_p, cls_p = _cache_paths(archive, cache, split)
            np.save(img_p, arrays.images)
            np.save(lab_p, arrays.labels)
            cls_p.write_text("\n".join(arrays.class_names))
    return out
