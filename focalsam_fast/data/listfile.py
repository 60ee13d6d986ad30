"""``path label`` list files over an image root (ImageNet-LT, iNaturalist 2018)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from focalsam_fast.data.integrity import ExpectedCounts, check_class_counts, first_examples, integrity_error


class ListFileError(ValueError):
    """A malformed line of a list file (the message names the file and line number)."""


class CorruptImageError(OSError):
    """An image that cannot be decoded (the message names the image and its list-file line)."""


def parse_list_file(list_file: str | Path) -> list[tuple[str, int, int]]:
    """``(relative path, label, line number)`` for each non-blank line ``<path> <label>``.

    A line with another number of fields, a non-integer or negative label raises
    :class:`ListFileError` naming ``list_file:line``.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"list file {list_file} not found")
    entries = []
    with list_file.open() as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ListFileError(f"{list_file}:{lineno}: expected '<path> <label>', got {line.rstrip()!r}")
            try:
                label = int(fields[1])
            except ValueError:
                raise ListFileError(f"{list_file}:{lineno}: label {fields[1]!r} is not an integer") from None
            if label < 0:
                raise ListFileError(f"{list_file}:{lineno}: negative label {label}")
            entries.append((fields[0], label, lineno))
    if not entries:
        raise ListFileError(f"{list_file}: no entries")
    return entries


def check_listed_files(image_root: Path, list_file: Path, entries: list[tuple[str, int, int]]) -> None:
    """Raise :class:`DataIntegrityError` unless every listed image exists under ``image_root`` as a
    non-empty file; the message counts the missing and unreadable ones and names the first.

    Each folder is listed once (``os.scandir``) rather than each file probed, so ImageNet-scale
    lists are checked in well under a second on a local disk.
    """
    by_folder: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for path, _, lineno in entries:
        folder, _, name = path.rpartition("/")
        by_folder[folder].append((name, path, lineno))
    missing, unreadable = [], []
    for folder, listed in by_folder.items():
        try:
            with os.scandir(image_root / folder) as it:
                present = {e.name: e for e in it}
        except (FileNotFoundError, NotADirectoryError):
            present = {}
        except PermissionError:
            unreadable += [f"{path} (line {lineno}, folder not readable)" for _, path, lineno in listed]
            continue
        for name, path, lineno in listed:
            entry = present.get(name)
            if entry is None:
                missing.append(f"{path} (line {lineno})")
            elif not entry.is_file() or entry.stat().st_size == 0:
                unreadable.append(f"{path} (line {lineno}, {'empty' if entry.is_file() else 'not a file'})")
    problems = []
    if missing:
        share = f"{len(missing):,} of {len(entries):,}"
        problems.append(f"{share} listed images are missing: {first_examples(missing)}")
    if unreadable:
        problems.append(f"{len(unreadable):,} cannot be read: {first_examples(unreadable)}")
    if problems:
        raise integrity_error(
            list_file,
            f"under image root {image_root}, " + "; ".join(problems),
            "extract the images so that <image root>/<listed path> exists for every line, "
            "or fix the list file",
        )


class ListFileDataset(Dataset):
    """Images listed in ``list_file`` (paths relative to ``image_root``), decoded lazily as RGB.

    ``num_classes`` defaults to ``max(label) + 1``.  ``class_counts`` holds the label histogram.
    At construction the list is checked: against ``expected`` counts when given (``split`` names
    the split in the message) and, with ``check_files``, that every listed image exists and is not
    empty (:func:`check_listed_files`); both raise :class:`DataIntegrityError`.
    """

    def __init__(
        self,
        image_root: str | Path,
        list_file: str | Path,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        num_classes: int | None = None,
        expected: ExpectedCounts | None = None,
        split: str = "train",
        check_files: bool = True,
    ) -> None:
        self.image_root = Path(image_root)
        self.list_file = Path(list_file)
        self.entries = parse_list_file(self.list_file)
        self.targets = [label for _, label, _ in self.entries]
        self.num_classes = num_classes if num_classes is not None else max(self.targets) + 1
        if max(self.targets) >= self.num_classes:
            _, label, lineno = next(e for e in self.entries if e[1] >= self.num_classes)
            raise ListFileError(f"{self.list_file}:{lineno}: label {label} >= num_classes {self.num_classes}")
        self.class_counts = torch.bincount(torch.tensor(self.targets), minlength=self.num_classes).tolist()
        if expected is not None:
            check_class_counts(
                self.list_file,
                split,
                self.class_counts,
                expected,
                "the list file is truncated or not the standard one: download it again "
                "(or pass your own list under another name)",
            )
        if check_files:
            check_listed_files(self.image_root, self.list_file, self.entries)
        self.transform = transform

    def class_names(self) -> list[str]:
        """Each class's name: the parent folder of its first listed image (WordNet id, iNat id)."""
        names: dict[int, str] = {}
        for path, label, _ in self.entries:
            names.setdefault(label, Path(path).parent.name)
        return [names.get(k, str(k)) for k in range(self.num_classes)]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | Image.Image, int]:
        path, label, lineno = self.entries[index]
        full = self.image_root / path
        try:
            with Image.open(full) as img:
                img = img.convert("RGB")
        except OSError as exc:
            raise CorruptImageError(
                f"{full} (listed at {self.list_file}:{lineno}) cannot be read: {exc}"
            ) from exc
        return (self.transform(img) if self.transform is not None else img), label
