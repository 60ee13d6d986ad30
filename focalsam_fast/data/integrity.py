"""One integrity check for every loader: a damaged or incomplete data set fails loudly, never shrinks.

Each loader states what a split must hold (:class:`ExpectedCounts`) and calls
:func:`check_class_counts` with the per-class counts it actually read; any difference raises
:class:`DataIntegrityError` with a one-line message naming the source, the split, what is missing
(e.g. ``class 3 (cat) has 4,212 of 5,000 training images``) and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SPLIT_WORDS = {"train": "training", "test": "test", "val": "validation"}
SHOWN = 3  # problems named in a message before "and N more"


class DataIntegrityError(OSError):
    """Data on disk that is damaged, truncated or incomplete.

    The message is one line: the file or folder, the split, what is wrong and how to fix it.  It is
    an ``OSError`` (a damaged file), so callers that report unreadable data report it too.
    """


def integrity_error(source: str | Path, problem: str, fix: str) -> DataIntegrityError:
    """``DataIntegrityError("<source>: <problem>; <fix>")`` with every whitespace run made one space."""
    return DataIntegrityError(" ".join(f"{source}: {problem}; {fix}".split()))


def first_examples(items: Sequence[str], total: int | None = None) -> str:
    """``"a, b, c and 5 more"`` from the first :data:`SHOWN` items (``total`` defaults to their number)."""
    total = len(items) if total is None else total
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {total - SHOWN:,} more" if total > SHOWN else "")


@dataclass(frozen=True)
class ExpectedCounts:
    """What one split must hold: ``num_classes`` classes, and either exactly ``per_class`` images in
    every class (balanced sets) or ``total`` images in all with every class present (long-tailed
    lists whose per-class profile is not published)."""

    num_classes: int
    per_class: int | None = None
    total: int | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 1 or min(self.per_class or 0, self.total or 0) < 0:
            raise ValueError(f"expected counts must be positive, got {self}")
        if self.per_class is not None and self.total is not None:
            raise ValueError(f"give per_class or total, not both: {self}")


# CIFAR-10/100 (Krizhevsky 2009): 50,000 training and 10,000 test images in 10 or 100 classes.
CIFAR_COUNTS = {
    10: {"train": ExpectedCounts(10, per_class=5000), "test": ExpectedCounts(10, per_class=1000)},
    100: {"train": ExpectedCounts(100, per_class=500), "test": ExpectedCounts(100, per_class=100)},
}


def _classes(n: int) -> str:
    return f"{n:,} class" if n == 1 else f"{n:,} classes"


def _class_label(k: int, class_names: Sequence[str] | None) -> str:
    return f"class {k} ({class_names[k]})" if class_names is not None else f"class {k}"


def check_class_counts(
    source: str | Path,
    split: str,
    counts: Sequence[int],
    expected: ExpectedCounts,
    fix: str,
    class_names: Sequence[str] | None = None,
    detail: Callable[[int], str] | None = None,
) -> None:
    """Raise :class:`DataIntegrityError` unless ``counts`` (images per class, label order) match.

    ``detail(k)`` may add what the loader knows about class ``k`` (e.g. the missing file names);
    the message names at most :data:`SHOWN` classes and counts the rest.
    """
    images = f"{SPLIT_WORDS.get(split, split)} images"
    have = sum(counts)
    if len(counts) != expected.num_classes:
        names = f" ({first_examples(list(class_names))})" if class_names is not None else ""
        have_classes = f"{split} split has {_classes(len(counts))}{names}"
        raise integrity_error(source, f"{have_classes}, expected {expected.num_classes:,}", fix)
    if expected.per_class is not None:
        bad = [k for k, n in enumerate(counts) if n != expected.per_class]
        want = expected.per_class * expected.num_classes
        what = [
            f"{_class_label(k, class_names)} has {counts[k]:,} of {expected.per_class:,} {images}"
            + (f" ({extra})" if detail is not None and (extra := detail(k)) else "")
            for k in bad[:SHOWN]
        ]
        what_bad = first_examples(what, len(bad))
    else:
        bad = [k for k, n in enumerate(counts) if n == 0]
        want = have if expected.total is None else expected.total
        what = [_class_label(k, class_names) for k in bad[:SHOWN]]
        what_bad = f"no {images} in {_classes(len(bad))} ({first_examples(what, len(bad))})"
    if not bad and have == want:
        return
    problem = f"{split} split has {have:,} of {want:,} {images}" + (f": {what_bad}" if bad else "")
    raise integrity_error(source, problem, fix)
