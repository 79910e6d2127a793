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
    counting still frees everything. Nested use is fine."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
