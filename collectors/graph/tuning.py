"""Process-wide settings that make the HTTP stack under msgraph-sdk cheaper per answer.

Every answer goes through asyncio, anyio, httpcore, h11 and httpx on the collection's one event
loop, and each of the loop's turns waits for the others' work: what a request costs is mostly
the turns it takes and the copies of its body. Measured on the 2-vCPU VM of docs/benchmarks.md
(round 3): a request took 6 turns of the loop, a 1.3 MB audit page 6 to 21 more, and copying a
page cost 3 ms where 0.3 ms would do. `tune()` changes three things, each only from the
library's default (so a caller's own setting is kept), each a no-op when the library lacks it:

- **Reads**: httpcore asks the socket for 64 KiB at a time and asyncio's transport takes at most
  256 KiB per read; both go to 4 MiB, so that one turn takes what the socket holds (usually a
  whole page): 2,200 reads of the large tenant become ~950, 5,500 turns ~3,750.
- **Locks**: httpcore's connection locks (anyio `Lock`) take a checkpoint - a turn of the loop -
  even when free; anyio's `fast_acquire` skips it when the lock is free (it is: one request per
  connection), 3 of a request's 6 turns.
- **Buffers** (glibc): blocks over the mmap threshold are mmapped and unmapped, and the heap's free
  top is given back to the OS, so each of a body's 4-5 copies met fresh pages. Blocks up to
  32 MiB come from the heap and 64 MiB of free heap is kept: what glibc's own adaptive threshold
  ends at after a 32 MiB block has been freed.

Nothing else in pimtrail uses asyncio sockets or httpcore; the buffer setting is the one that
outlives the collection (the rest of a `pimtrail collect` run reads the export and writes the
history, and is not slower for it).
"""

from __future__ import annotations

READ_SIZE = 4 << 20  # bytes asked of the socket per read (httpcore: 64 KiB; asyncio's transport: 256 KiB)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
HEAP_BLOCKS = 32 << 20  # blocks up to this size come from the heap, not from a mapping of their own
HEAP_KEPT = 64 << 20  # free memory kept at the top of the heap before it is given back

_done = False


def tune() -> None:
    global _done
    if _done:
        return
    _done = True
    _larger_reads()
    _lighter_locks()
    _reused_buffers()


def _larger_reads() -> None:
    import asyncio.selector_events

    from httpcore._async.http11 import AsyncHTTP11Connection

    if AsyncHTTP11Connection.READ_NUM_BYTES in (64 * 1024, 1 << 20):
        AsyncHTTP11Connection.READ_NUM_BYTES = READ_SIZE
    transport = asyncio.selector_events._SelectorSocketTransport
    if getattr(transport, "max_size", None) == 256 * 1024:
        transport.max_size = READ_SIZE


def _lighter_locks() -> None:
    import inspect

    import anyio
    from httpcore import _synchronization as sync

    lock = getattr(sync, "AsyncLock", None)
    setup = getattr(lock, "setup", None)
    try:
        fast = "fast_acquire" in inspect.signature(anyio.Lock).parameters
    except (TypeError, ValueError):
        fast = False
    if setup is None or not fast or getattr(setup, "pimtrail", False):
        return

    def lighter(self) -> None:
        setup(self)
        if getattr(self, "_backend", "") == "asyncio" and hasattr(self, "_anyio_lock"):
            self._anyio_lock = anyio.Lock(fast_acquire=True)

    lighter.pimtrail = True  # type: ignore[attr-defined]
    lock.setup = lighter


def _reused_buffers() -> None:
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(M_MMAP_THRESHOLD, HEAP_BLOCKS)
    mallopt(M_TRIM_THRESHOLD, HEAP_KEPT)
