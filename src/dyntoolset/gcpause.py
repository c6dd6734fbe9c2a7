"""Pausing Python's cycle collector around bursts of allocation, safely across threads.

Decoding Kubernetes JSON makes tens of thousands of containers at once, and
Python's cycle collector, triggered by allocation counts, walks them (and,
in its full collections, everything else alive) while freeing nothing: the
decoded objects are acyclic and reference counting frees them. Measured in
issue 15 it was a third of ``discover``'s CPU (workload 1) and about 40 % of
the controller's initial list (workload 3).

:func:`cycle_collector_paused` turns the collector off for the duration of
a ``with`` block. The collector is one switch for the whole process, so the
pauses are counted: with several threads pausing at once (one reflector per
namespace), it is switched back on only when the last pause ends, and only
if it was on when the first began (an embedder that turned it off keeps it
off). Garbage is still freed by reference counting during a pause; only
reference cycles wait for the next collection after it.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["cycle_collector_paused"]

_lock = threading.Lock()
_pauses = 0
#: Whether the collector was on when the outermost pause began.
_was_enabled = False


@contextlib.contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Turn the cycle collector off inside the block; see the module docstring."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
