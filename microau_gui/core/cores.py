"""How many CPU cores this process may use: the one answer every thread count is derived from;
and which instruction-set flags the CPU reports.

Owns: `usable_cores`, `cpu_flags`. Imports nothing of ours (standard library only).

Why not `os.cpu_count()`: it counts the machine's logical CPUs, not the ones this process may
run on. Under `taskset`, a container's cpuset or a batch scheduler's allocation the two differ,
and a thread count taken from the machine then puts several busy threads on one core, where
OpenMP threads wait for a descheduled sibling (on a 2-core machine, 2 torch threads on a shared
core were 10-40x slower than 1: `inference.speed`). Note that `os.process_cpu_count()` (Python
3.13) answers the same; we support older Pythons.
"""

from __future__ import annotations

import os
from pathlib import Path


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. under taskset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cpu_flags() -> set[str]:
    """The CPU's flags as Linux's /proc/cpuinfo lists them (`avx2`, `avx512f`, `amx_bf16` ...);
    empty where there is no such file (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()
