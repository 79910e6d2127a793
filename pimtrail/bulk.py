"""Bulk work on millions of small objects: the cyclic garbage collector paused meanwhile."""

from __future__ import annotations

import gc
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator


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


# glibc's malloc parameters (malloc.h) and their defaults (mallopt(3))
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_TOP_PAD: 128 * 1024, _M_MMAP_MAX: 65536}
_KEPT = {_M_TRIM_THRESHOLD: (1 << 31) - 1, _M_TOP_PAD: 64 << 20, _M_MMAP_MAX: 0}
_held = 0  # `kept_heap` scopes entered and not left
_lock = threading.Lock()


def _glibc() -> Any:
    """The process's C library when it is glibc (whose malloc takes these parameters), else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or no GNU C library
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _set(libc: Any, values: dict[int, int]) -> None:
    for param, value in values.items():
        libc.mallopt(param, value)


@contextmanager
def kept_heap() -> Iterator[None]:
    """Memory freed meanwhile kept for the process's next allocations (glibc; elsewhere nothing changes): blocks of
    any size come from the heap (none is mapped apart and unmapped when freed) and the heap is not trimmed. A large
    export's read and ingest free file texts of up to 243 MB and then allocate as much again, each page of which the
    system would otherwise hand out anew (a page fault, ~2 us on a VM): the large first snapshot's faults 585 k ->
    469 k in the ingest, 518 k -> 403 k in its worker. Left (the outermost scope), the defaults again and the free
    memory given back (`malloc_trim`). Nested use is fine."""
    global _held
    libc = _glibc()
    with _lock:
        _held += 1
        if libc is not None and _held == 1:
            _set(libc, _KEPT)
    try:
        yield
    finally:
        with _lock:
            _held -= 1
            if libc is not None and _held == 0:
                _set(libc, _DEFAULTS)
                libc.malloc_trim(0)


def keep_heap() -> None:
    """`kept_heap` for the rest of the process: one that ends with its bulk job (`pimtrail.store.worker`)."""
    global _held
    libc = _glibc()
    with _lock:
        _held += 1
        if libc is not None and _held == 1:
            _set(libc, _KEPT)
