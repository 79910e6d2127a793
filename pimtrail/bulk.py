"""Bulk work on millions of small objects: the cyclic garbage collector paused meanwhile."""

from __future__ import annotations

import functools
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


# glibc's malloc parameters (malloc.h, mallopt(3)). Setting any of them ends glibc's sliding mmap threshold for the
# process, which rises (to 32 MB at most, the trim threshold twice that) as mapped blocks are freed: left, the scope
# sets where it slides to, so that blocks of up to 32 MB freed later are reused as they were (a 4 MB block freed and
# allocated again 20 times: 0 page faults, against ~20,000 with the fixed defaults)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
_AFTER = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20, _M_TOP_PAD: 128 * 1024, _M_MMAP_MAX: 65536}
_KEPT = {_M_TRIM_THRESHOLD: (1 << 31) - 1, _M_TOP_PAD: 64 << 20, _M_MMAP_MAX: 0}
_held = 0  # `kept_heap` scopes entered and not left
_lock = threading.Lock()


def _glibc() -> Any:
    """The process's C library when it is glibc (whose malloc takes these parameters) and the user set none of them
    (`MALLOC_*_`, `GLIBC_TUNABLES`: theirs stand), else None."""
    if any(name.startswith("MALLOC_") or name == "GLIBC_TUNABLES" for name in os.environ):
        return None
    return _libc()


@functools.cache
def _libc() -> Any:
    """glibc with `mallopt` and `malloc_trim` typed, found once (each scope is entered and left by every read and
    ingest), or None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or no GNU C library
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
            return None
    except OSError:
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def _set(libc: Any, values: dict[int, int]) -> None:
    for param, value in values.items():
        libc.mallopt(param, value)


@contextmanager
def kept_heap() -> Iterator[None]:
    """Memory freed meanwhile kept for the process's next allocations (glibc; elsewhere nothing changes): blocks of
    any size come from the heap (none is mapped apart and unmapped when freed) and the heap is not trimmed. A large
    export's read and ingest free file texts of up to 243 MB and then allocate as much again, each page of which the
    system would otherwise hand out anew (a page fault, ~2 us on a VM): the large first snapshot's faults 585 k ->
    469 k in the ingest, 518 k -> 403 k in its worker. Left (the outermost scope), blocks are mapped apart and the
    heap trimmed again (`_AFTER`: as glibc's own defaults have slid to once large blocks were freed), and the free
    memory is given back (`malloc_trim`). Nested use is fine."""
    global _held
    keep_heap()
    try:
        yield
    finally:
        libc = _glibc()
        with _lock:
            _held -= 1
            if libc is not None and _held == 0:
                _set(libc, _AFTER)
                libc.malloc_trim(0)


def keep_heap() -> None:
    """`kept_heap` for the rest of the process: one that ends with its bulk job (`pimtrail.store.worker`)."""
    global _held
    libc = _glibc()
    with _lock:
        _held += 1
        if libc is not None and _held == 1:
            _set(libc, _KEPT)
