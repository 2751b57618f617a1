"""SIGINT/SIGTERM: finish at the next batch boundary instead of dying mid-write.

While :func:`graceful` is active, the first SIGINT or SIGTERM only sets a flag; the engine calls
:func:`check_interrupt` between batches, which raises :class:`Interrupted`. The runner has then saved every
finished sweep point (each is written as it finishes), so a rerun of the same command resumes. A second
SIGINT raises KeyboardInterrupt at once, for a block stuck in a long computation.
"""
from __future__ import annotations

import contextlib
import signal
import threading

_received: int | None = None


class Interrupted(Exception):
    """The run was stopped by a signal at a batch boundary; ``detail`` says what was kept."""

    def __init__(self, signum: int, detail: str = ""):
        self.signum = signum
        self.detail = detail
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def check_interrupt() -> None:
    if _received is not None:
        raise Interrupted(_received)


def _handler(signum, frame):
    global _received
    if _received is not None and signum == signal.SIGINT:
        raise KeyboardInterrupt
    _received = signum


@contextlib.contextmanager
def graceful():
    """Install the handlers (main thread only; elsewhere a no-op) and restore the previous ones on exit."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = None
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _received = None
