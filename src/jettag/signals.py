"""SIGTERM handling: what a batch system sends before it kills a job."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


@contextlib.contextmanager
def on_sigterm(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Call handler on SIGTERM inside the block; the previous handler is restored after.

    Python lets only the main thread install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Hold SIGTERM's handler back inside the block; one that arrived runs when it ends.

    For imports of native extensions (torch): a Python exception raised by a signal handler
    inside their initialisation cannot cross the C++ frames and aborts the process (SIGABRT)
    instead of unwinding. Masking the signal is not enough: another thread (BLAS) takes it
    and the main thread still runs the handler mid-import, so the handler is swapped instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if arrived and callable(previous):
            previous(signal.SIGTERM, None)
