"""Returning freed heap memory to the OS (glibc), between sweep points and after each trained block."""
from __future__ import annotations

import ctypes
import functools
import sys


@functools.cache
def _libc():
    """glibc, or None (other platforms, musl): the heap calls below are then skipped."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL("libc.so.6")
        return lib if hasattr(lib, "malloc_trim") else None
    except OSError:
        return None


def release_free_heap() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``), called after every sweep point and trained
    block.

    Without it the main job held 7.7 GB for a 2 GB working set: transient payload tensors of a few MB are
    freed between the memo's long-lived entries and glibc keeps the holes. Fixing the mmap threshold instead
    (every allocation >= 4 MiB its own mapping) bounded memory as well but cost ~30 CPU-s of page faults.
    No library offers this, hence the ctypes call."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
