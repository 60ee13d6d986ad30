"""Progress inside a run: a tqdm bar on a terminal, plain lines elsewhere (nohup, CI, a pipe).

Modes (``Trainer(progress=...)``): ``"bar"`` (``True``) a transient tqdm bar per epoch;
``"lines"`` a line every ``every_s`` seconds inside an epoch (step, loss, throughput, ETA) for logs
that are not a terminal; ``"off"`` (``False``, ``--no-progress``) neither; ``"auto"`` (``None``)
the bar when stderr is a terminal, else lines.  The per-epoch lines are the engine's, printed in
every mode (``--quiet`` silences the whole log).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

MODES = ("auto", "bar", "lines", "off")
DEFAULT_EVERY_S = 30.0


def progress_mode(progress: bool | str | None, stream: TextIO | None = None) -> str:
    """``"bar"``, ``"lines"`` or ``"off"`` for a ``progress`` setting (see the module docstring)."""
    if progress is None or progress == "auto":
        stream = sys.stderr if stream is None else stream
        isatty = getattr(stream, "isatty", None)
        return "bar" if isatty is not None and isatty() else "lines"
    if progress is True:
        return "bar"
    if progress is False:
        return "off"
    if progress in MODES:
        return str(progress)
    raise ValueError(f"unknown progress mode {progress!r}; valid: {', '.join(MODES)}, True, False, None")


def fmt_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h01m``, ``3d04h``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class EpochProgress:
    """Progress of one training epoch of ``steps`` steps.

    ``later_epochs``: full epochs still to run after this one; ``epoch_estimate``: seconds one of
    them is expected to take (``None``: ``steps`` times this epoch's mean step time), both for
    the run's ETA.
    """

    def __init__(
        self,
        epoch: int,
        epochs: int,
        steps: int,
        mode: str,
        log: Callable[[str], None],
        every_s: float = DEFAULT_EVERY_S,
        later_epochs: int = 0,
        epoch_estimate: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.epoch, self.epochs, self.steps, self.mode, self.log = epoch, epochs, steps, mode, log
        self.every_s, self.later_epochs, self.epoch_estimate, self.clock = (
            every_s,
            later_epochs,
            epoch_estimate,
            clock,
        )
        self.done, self.samples = 0, 0
        self.start = self.last_line = clock()
        self.bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False)

    def update(self, batch: int, loss: float, global_step: int) -> None:
        """One step of ``batch`` samples with mean loss ``loss`` done (``global_step`` steps in all)."""
        self.done += 1
        self.samples += batch
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}")
        elif self.mode == "lines":
            now = self.clock()
            if now - self.last_line >= self.every_s and self.done < self.steps:
                self.last_line = now
                self.log(self.line(loss, global_step, now - self.start))

    def line(self, loss: float, global_step: int, elapsed: float) -> str:
        """``epoch 3/200  step 120/194 (508 in all)  loss 1.234  52.1 img/s  ETA epoch 1m23s, run 2h01m``."""
        per_step = elapsed / max(self.done, 1)
        epoch_left = per_step * (self.steps - self.done)
        full = self.epoch_estimate if self.epoch_estimate is not None else per_step * self.steps
        rate = self.samples / elapsed if elapsed > 0 else float("inf")
        return (
            f"epoch {self.epoch}/{self.epochs}  step {self.done}/{self.steps} ({global_step} in all)  "
            f"loss {loss:.4f}  {rate:.1f} img/s  ETA epoch {fmt_duration(epoch_left)}, "
            f"run {fmt_duration(epoch_left + self.later_epochs * full)}"
        )

    def close(self) -> None:
        """Remove the bar (if any)."""
        if self.bar is not None:
            self.bar.close()
