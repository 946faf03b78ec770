"""How many worker processes the data stages (extract, tfrecords) may start."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one), >= 1."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
