"""Bulk work on millions of small objects: the cyclic garbage collector paused meanwhile."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    """Reading an export and writing it into the history build millions of small objects and no
    reference cycles. With the cyclic collector running, its full passes over the growing heap
    cost about a third of the time of a 100,000-user export (docs/benchmarks.md); reference
    counting still frees everything, and a full collection (rare: the oldest generation's) still
    finds any cycle. Nested use is fine."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # What was built meanwhile joins the oldest generation as it is (freeze, then unfreeze: two
            # list splices). Re-enabled with those millions of objects young, the collector's next pass
            # would go over every one of them: ~1 s after reading a daily export, again after writing it.
            gc.freeze()
            gc.unfreeze()
            gc.enable()
