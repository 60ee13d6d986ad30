"""The number of CPU threads a run uses (``--threads``).

Default: the physical cores this process may run on, i.e. ``min(physical cores, CPUs in
os.sched_getaffinity)``.  torch's own default (every logical CPU of the machine) oversubscribes a
shared or busy machine: on a loaded 2-core machine an epoch took 172 s with it and 56 s with one
thread.  The small digits CNN on the CPU uses one thread (its ops are too small to gain from
intra-op parallelism).  An explicit ``--threads N`` always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def usable_cpus() -> int:
    """The logical CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def physical_cores(cpuinfo: Path = CPUINFO) -> int | None:
    """Distinct (physical id, core id) pairs of ``/proc/cpuinfo``; ``None`` where it cannot tell."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    cores = set()
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def default_threads(model: str, device_type: str) -> int:
    """Threads when ``--threads`` is not given (see the module docstring)."""
    if device_type == "cpu" and model == "digits_cnn":
        return 1
    usable = usable_cpus()
    return min(physical_cores() or usable, usable)


def choose_threads(requested: int | None, model: str, device_type: str) -> int:
    """``requested`` if given, else :func:`default_threads`."""
    return requested if requested is not None else default_threads(model, device_type)
