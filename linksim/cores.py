"""The CPU cores this process may run on (its affinity mask; the CPU count where there is none)."""
from __future__ import annotations

import os


def available_cores() -> int:
    """Usable cores, at least 1: the fast LDPC decoder's thread count and the malloc arena cap."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
