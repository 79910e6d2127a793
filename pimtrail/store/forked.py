"""Work on the second core: a function run in a forked child process while the caller goes on.

The child inherits the caller's memory as it is at the fork (the snapshot read, copy-on-write), so nothing is
sent to it; what it returns comes back pickled through a pipe, which a thread of the caller drains as it comes
(os.read lets go of the GIL). The child touches no database connection, file or lock it inherited: it computes,
writes its result and leaves with `os._exit`, so no finaliser of an inherited connection runs in it (a
PostgreSQL connection closed there would end the caller's session).

`result()` is None whenever the child did not give one: no fork on this platform, other threads running (a
lock one of them held would stay held in the child), too little memory available for the child's copy of this
process's pages (`room_for_a_copy`), the function raised, the child was killed. The caller
then does the work itself, so an error is raised where it would have been, with its own message: the child
never decides anything, it only saves time.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from typing import Any, Callable


def room_for_a_copy() -> bool:
    """Whether the machine has memory available for a child that copies all of this process's memory: it
    touches the objects it reads (their reference counts), so their pages are copied (measured on a large
    tenant's first ingest: 2.7 GB of the parent's 2.6 GB after reading the export, and what it makes)."""
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return available > 1.5 * resident


class Forked:
    """`fn(*args)` in a forked child; `result()` its value, or None (see the module). `fn` None: no child."""

    def __init__(self, fn: Callable[..., Any] | None, *args: Any):
        self._pid: int | None = None
        self._chunks: list[bytes] = []
        if fn is None or not hasattr(os, "fork") or not sys.platform.startswith("linux") or threading.active_count() != 1 \
                or not room_for_a_copy():
            return
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: compute, send, leave without running anything inherited
            code = 1
            try:
                os.close(read)
                data = memoryview(pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL))
                while data:
                    data = data[os.write(write, data):]
                code = 0
            except BaseException:  # noqa: BLE001 -- the caller does the work again and raises it there
                pass
            finally:
                os._exit(code)
        os.close(write)
        self._pid = pid
        self._reader = threading.Thread(target=self._drain, args=(read,), name="pimtrail-forked", daemon=True)
        self._reader.start()

    def _drain(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 1 << 20):
                self._chunks.append(chunk)
        finally:
            os.close(fd)

    def _wait(self) -> int:
        pid, self._pid = self._pid, None
        if pid is None:
            return -1
        self._reader.join()
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def result(self) -> Any:
        """The child's value, or None when it gave none; waits for it."""
        if self._wait() != 0 or not self._chunks:
            return None
        data, self._chunks = b"".join(self._chunks), []
        return pickle.loads(data)

    def cancel(self) -> None:
        """Stop the child (the caller failed or no longer needs it)."""
        if self._pid is not None:
            try:
                os.kill(self._pid, 9)
            except ProcessLookupError:
                pass
            self._wait()
        self._chunks = []

    def __enter__(self) -> "Forked":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cancel()
