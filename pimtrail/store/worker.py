"""Work on the second core: a function run in a fresh Python process while the caller goes on.

The caller pickles the function's name and arguments to the worker's stdin (a thread of its own writes them,
so the caller is not held up) and a second thread drains the pickled value from its stdout as it comes (pipe
I/O lets go of the GIL). The worker imports only what the function needs and starts with an empty heap. A
function can take a second message the caller sends later (`Worker.send`, `received()` in the worker): it
starts on what it has and waits for the rest where it needs it. It can give parts of its value before it
returns (`give` in the worker, `Worker.part()` in the caller): the caller goes on with the first part while the
worker makes the rest. Each part and the value is a frame on the worker's stdout (a kind, a length, a pickle); what
the function prints goes to its stderr, which is discarded.

Until round 11 this was a fork of the caller. A fork shares the caller's memory copy-on-write, and CPython
writes to every object it touches (reference counts), so after a large first snapshot's read (2.6 GB resident)
both processes took a page fault and a 4 kB copy for nearly every page they went on to touch: ~3 s more in the
parent's write, ~3 s more in the child, and a second copy of the memory (docs/benchmarks.md, "First ingest,
round 11"). A worker is sent only what it needs, a few hundred MB of text at most.

**The caller's code, nothing else.** The interpreter starts without the current directory on its path or the
PYTHON* variables (`-P -E`) and takes the caller's `sys.path` from the first message before it imports anything
of pimtrail; it compares every pimtrail module it imported with the caller's (file, size and modification time)
once the function's module is imported and again after the call, and gives nothing when one differs. A caller
whose pimtrail files changed after it imported them (an upgrade, a switched checkout) starts no worker.

`result()` is None whenever the worker did not give one: no interpreter to start (a frozen build), too little
memory available for it (`room_for`, which counts the container's limit too), the function raised, the worker
was killed (it asks the kernel to kill it first when memory runs out). The caller then does the work itself,
so an error is raised where it would have been, with its own message: the worker never decides anything, it
only saves time. Its stderr is discarded for the same reason. A worker no one waits for any longer is killed
when its `Worker` is dropped.
"""

from __future__ import annotations

import gc
import importlib
import io
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Callable

from pimtrail.bulk import keep_heap

# `-P` leaves the current directory off the path, `-E` the PYTHON* variables; the first message's path is the caller's
_MAIN = ("import sys, pickle; sys.path[:] = pickle.load(sys.stdin.buffer); "
         "from pimtrail.store.worker import main; sys.exit(main())")
_IMPORTED_NS = time.time_ns()  # a pimtrail file modified after this: the caller may not run what the file says


def room_for(size: int) -> bool:
    """Whether the machine has `size` bytes of memory available (and the container, when it sets a limit)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    try:  # cgroup v2: what the container may still take
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as current:
            text = limit.read().strip()
            if text != "max":
                available = min(available, int(text) - int(current.read()))
    except (OSError, ValueError):
        pass
    return available > size


def _code() -> list[tuple[str, str, int, int]] | None:
    """The caller's pimtrail modules: (name, file, size, modification time); None when one was modified after
    this process imported pimtrail's store (what it runs may not be what the file says)."""
    out = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if (name == "pimtrail" or name.startswith("pimtrail.")) and file:
            try:
                stat = os.stat(file)
            except OSError:
                continue
            if stat.st_mtime_ns > _IMPORTED_NS:
                return None
            out.append((name, file, stat.st_size, stat.st_mtime_ns))
    return out


def _interpreter() -> str | None:
    """This process's Python interpreter, when it is one a worker can be started with."""
    exe = sys.executable
    if not exe or getattr(sys, "frozen", False) or not os.path.basename(exe).lower().startswith("python"):
        return None
    return exe


class Worker:
    """`fn(*args)` in a fresh process; `result()` its value, or None (see the module). `fn` None: no worker.
    `fn` must be importable by its module and name, `args` picklable, its value picklable and without cycles.
    `needs`: bytes of memory it will use."""

    def __init__(self, fn: Callable[..., Any] | None, *args: Any, needs: int = 0):
        self._proc: subprocess.Popen | None = None
        self._frames: queue.Queue[tuple[bytes, bytes]] = queue.Queue()  # (b"p" part / b"r" value / b"", pickle)
        self._held: tuple[bytes, bytes] | None = None  # the frame `part()` took that was not a part
        self._ended = False
        self._finalizer: weakref.finalize | None = None
        exe = _interpreter() if fn is not None else None
        code = _code() if exe is not None else None
        if exe is None or code is None or not room_for(needs):
            return
        path = [p or os.getcwd() for p in sys.path]  # "" is the caller's current directory
        try:
            payload = [pickle.dumps(path, protocol=pickle.HIGHEST_PROTOCOL),
                       pickle.dumps((fn.__module__, fn.__qualname__, args, code), protocol=pickle.HIGHEST_PROTOCOL)]
        except (pickle.PicklingError, TypeError, AttributeError):
            return
        try:
            self._proc = subprocess.Popen([exe, "-P", "-E", "-c", _MAIN], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            return
        _widen(self._proc.stdout)  # type: ignore[arg-type]
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        for part in payload:
            self._outbox.put(part)
        proc = self._proc
        self._threads = [threading.Thread(target=_send, args=(proc, self._outbox), name="pimtrail-worker-in",
                                          daemon=True),
                         threading.Thread(target=_drain, args=(proc, self._frames), name="pimtrail-worker-out",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()
        self._finalizer = weakref.finalize(self, _stop, proc, self._outbox)

    @property
    def running(self) -> bool:
        """Whether a worker was started and not yet waited for or stopped."""
        return self._proc is not None

    def send(self, message: Any) -> None:
        """The second message, for `received()` in the worker (none sent: `received()` gives None once the
        caller waits for the result). Queued: a thread writes it."""
        if self._proc is not None:
            self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            self._outbox.put(None)

    def _wait(self) -> int:
        proc, self._proc = self._proc, None
        return -1 if proc is None else self._reap(proc)

    def _reap(self, proc: subprocess.Popen) -> int:
        self._outbox.put(None)  # no (further) message is coming
        for thread in self._threads:
            thread.join()
        proc.stdout.close()  # type: ignore[union-attr]
        code = proc.wait()
        self._finalizer.detach()  # type: ignore[union-attr]
        return code

    def part(self) -> Any:
        """The next part of its value the worker gave before returning (`give`), or None when it gives no more
        (it returned, raised, or was stopped); waits for it, so a second message the function waits for is sent
        first. Parts are given only while the worker runs the caller's code, as its value is."""
        if self._ended:
            return None
        frame = self._next()
        if frame[0] != b"p":
            self._held = frame
            return None
        return _loads(frame[1])

    def _next(self) -> tuple[bytes, bytes]:
        if self._held is not None:
            frame, self._held = self._held, None
            return frame
        if self._proc is None and self._frames.empty():  # no worker, or one already waited for
            return b"", b""
        return self._frames.get()

    def result(self) -> Any:
        """The worker's value, or None when it gave none; waits for it (parts not taken are dropped)."""
        if self._proc is not None:
            self._outbox.put(None)  # no (further) message is coming: `received()` gives None
        frame = self._next()
        while frame[0] == b"p":
            frame = self._next()
        self._ended = True
        if frame[0] != b"r":
            self._wait()
            return None
        # its value is the last thing it writes, whole once read (`_drain`): taken without waiting for the process to
        # end, as its exit unmaps what it held (~0.1 s for a large first snapshot's 1.6 GB); a thread reaps it (and
        # `cancel` meanwhile finds no process here: its finalizer kills and reaps it, if still there)
        proc, self._proc = self._proc, None
        if proc is not None:
            threading.Thread(target=self._reap, args=(proc,), name="pimtrail-worker-reap", daemon=True).start()
        return _loads(frame[1])

    def cancel(self) -> None:
        """Stop the worker (the caller failed or no longer needs it; also after a `result()` cut short)."""
        self._ended = True
        proc = self._proc
        if proc is not None:
            proc.kill()
            self._wait()
        elif self._finalizer is not None and self._finalizer.alive:
            self._finalizer()
        self._held, self._frames = None, queue.Queue()  # nothing of it given after this (its threads have ended)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cancel()


_PIPE_SIZE = 1 << 20  # bytes a pipe holds once widened (Linux's default limit for an unprivileged process)


def _widen(pipe: Any) -> None:
    """Let the pipe hold `_PIPE_SIZE` bytes where the system allows it (Linux: F_SETPIPE_SZ), not 64 kB. The thread
    draining it needs the GIL between reads, which a busy caller holds for up to its switch interval (5 ms): the
    large first snapshot's first part (~3 MB, the audit log's element digests) took ~50 reads, and the worker sat
    waiting to write it for ~0.2 s."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
    except (ImportError, OSError, ValueError, AttributeError):  # another system, or a lower limit: as it was
        pass


def _stop(proc: subprocess.Popen, outbox: queue.Queue) -> None:
    """A worker whose `Worker` was dropped unwaited: killed and reaped (its threads end with its pipes)."""
    outbox.put(None)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _send(proc: subprocess.Popen, outbox: queue.Queue) -> None:
    try:
        while (part := outbox.get()) is not None:
            proc.stdin.write(part)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
    except (OSError, ValueError):  # it died or was stopped (a broken pipe): result() says None
        pass
    finally:
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except (OSError, ValueError):
            pass


def _drain(proc: subprocess.Popen, frames: queue.Queue) -> None:
    """The worker's frames as they come: a kind (b"p" a part, b"r" the value), 8 bytes of length, the pickle. An
    empty kind last: the worker's output ended."""
    out = proc.stdout  # type: ignore[union-attr]
    try:
        while len(head := out.read(9)) == 9:
            size = int.from_bytes(head[1:], "little")
            body = out.read(size)  # reads until `size` (os.read lets go of the GIL)
            if len(body) != size:
                break
            frames.put((head[:1], body))
    except (OSError, ValueError, OverflowError, MemoryError):  # not a frame of ours: no (further) part or value
        pass
    finally:
        frames.put((b"", b""))


def _loads(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 -- cut short or not ours: the caller does the work itself
        return None


def received() -> Any:
    """In the worker: the caller's second message (`Worker.send`), or None when it sent none."""
    try:
        return pickle.load(sys.stdin.buffer)
    except EOFError:
        return None


_CODE: list[tuple[str, str, int, int]] = []  # in the worker: the caller's pimtrail modules (`_code`)
_KEPT: list[Any] = []  # in the worker: what `keep` was given
_FRAMES: list[Any] = []  # in the worker: its stdout, for frames only (what code prints goes to stderr, discarded)


def give(value: Any) -> None:
    """In the worker: a part of its value for the caller now (`Worker.part()`), before the function returns. Not
    given, and the worker ends, when a pimtrail module it imported so far is not the caller's."""
    if any(_differs(entry) for entry in _CODE):
        raise SystemExit(3)
    _write(b"p", value)


def keep(*values: Any) -> None:
    """In the worker: objects not to be freed before the process ends, which it does without freeing them (the
    caller waits for the value, not for the worker's 180,000 events to be freed: ~0.5 s)."""
    _KEPT.append(values)


def _write(kind: bytes, value: Any) -> None:
    out = io.BytesIO()
    out.write(kind + bytes(8))
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    # without the memo: each object written as often as it is referenced (a value without cycles is whole), at
    # less than half the time (the large first snapshot's 240,000 rows: 0.25 against 0.61 s)
    pickler.fast = True
    pickler.dump(value)
    view = out.getbuffer()
    view[1:9] = (len(view) - 9).to_bytes(8, "little")
    _FRAMES[0].write(view)
    _FRAMES[0].flush()


def main() -> int:
    gc.disable()  # millions of small objects, no cycles, and the process ends with the call
    keep_heap()  # its freed memory reused, not given back and faulted in again
    try:  # when memory runs out, the kernel kills this process first: the caller goes on without it
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")
    except OSError:
        pass
    _FRAMES[:] = [sys.stdout.buffer]
    sys.stdout = sys.stderr
    module, name, args, code = pickle.load(sys.stdin.buffer)
    _CODE[:] = code
    fn: Any = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    if any(_differs(entry) for entry in code):
        return 3  # not the caller's code: nothing is done
    value = fn(*args)
    if any(_differs(entry) for entry in code):
        return 3  # what it imported meanwhile is not the caller's: its value is not given
    _write(b"r", value)
    if _KEPT:  # the value is written and flushed: end without freeing what the function kept
        os._exit(0)
    return 0


def _differs(entry: tuple[str, str, int, int]) -> bool:
    """Whether this process imported the caller's module `name` from elsewhere, or from a file changed since."""
    name, file, size, mtime = entry
    module = sys.modules.get(name)
    if module is None:
        return False
    mine = getattr(module, "__file__", None)
    if mine != file:
        return True
    try:
        stat = os.stat(file)
    except OSError:
        return True
    return (stat.st_size, stat.st_mtime_ns) != (size, mtime)
