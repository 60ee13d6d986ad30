"""Class names for CLIP text prompts ("a photo of a {name}."): read from the official name files,
and a check that names are words rather than folder ids.

Accepted files: ImageNet's ``classnames.txt`` (``wnid name`` per line), a plain text file with one
name per line, or iNaturalist 2018's ``categories.json`` (entries with ``id`` and ``name``).  The
files are not shipped: the paper's lists come with the public Focal-SAM / LIFT releases.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_WNID_LINE = re.compile(r"^n\d{8}\s+(\S.*)$")
_FOLDER_ID = re.compile(r"^(n\d{8}|\d+)$")


def load_class_names(path: str | Path, num_classes: int) -> list[str]:
    """The ``num_classes`` names in ``path``, in class-index order; ``ValueError`` naming the file
    and both counts when they differ."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--class-names {p}: cannot read it ({exc.strerror or exc})") from exc
    if p.suffix == ".json":
        try:
            entries = json.loads(text)
            pairs = sorted((int(e["id"]), str(e["name"]).strip()) for e in entries)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"--class-names {p}: not a categories JSON (a list of objects with 'id' and "
                f"'name', as iNaturalist's categories.json): {exc}"
            ) from exc
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise ValueError(f"--class-names {p}: category ids must be 0..{len(pairs) - 1} without gaps")
        names = [n for _, n in pairs]
    else:
        names = []
        for line in text.splitlines():
            line = line.strip()
            if line:
                m = _WNID_LINE.match(line)
                names.append(m.group(1).strip() if m else line)
    if len(names) != num_classes:
        raise ValueError(
            f"--class-names {p} has {len(names)} names but the data set has {num_classes} classes"
        )
    return names


def folder_ids(names: list[str]) -> list[str]:
    """The names that are folder ids (WordNet ids such as n01440764, or plain numbers), not words."""
    return [n for n in names if _FOLDER_ID.match(n.strip())]
