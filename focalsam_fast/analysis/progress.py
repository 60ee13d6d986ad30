"""Progress of the analysis stages: a tqdm bar on a terminal, else one line per stage on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Tick(Protocol):
    def __call__(self, n: int = 1) -> None: ...


@contextmanager
def stage(label: str, total: int, enabled: bool | None = None) -> Iterator[Tick]:
    """A stage of ``total`` units; yields ``tick(n=1)``.  ``enabled``: ``None`` = bars when stderr is a
    TTY and lines otherwise, ``False`` = silent, ``True`` = bars."""
    if enabled is False:
        yield lambda n=1: None
        return
    if enabled or sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total, desc=label, leave=False, file=sys.stderr) as bar:
            yield bar.update
        return
    t0 = time.perf_counter()
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n

    yield tick
    print(
        f"{label}: {done[0]} of {total} steps, {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True
    )
