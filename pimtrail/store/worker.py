"""Work on the second core: a function run in a fresh Python process while the caller goes on.

The caller pickles the function's name and arguments to the worker's stdin (a thread of its own writes them,
so the caller is not held up) and a second thread drains the pickled value from its stdout as it comes (pipe
I/O lets go of the GIL). The worker imports only what the function needs and starts with an empty heap. A
function can take a second message the caller sends later (`Worker.send`, `received()` in the worker): it
starts on what it has and waits for the rest where it needs it.

Until round 11 this was a fork of the caller. A fork shares the caller's memory copy-on-write, and CPython
writes to every object it touches (reference counts), so after a large first snapshot's read (2.6 GB resident)
both processes took a page fault and a 4 kB copy for nearly every page they went on to touch: ~3 s more in the
parent's write, ~3 s more in the child, and a second copy of the memory (docs/benchmarks.md, "First ingest,
round 11"). A worker is sent only what it needs, a few hundred MB of text at most.

`result()` is None whenever the worker did not give one: no interpreter to start, too little memory available
for it (`room_for`), the function raised, the worker was killed. The caller then does the work itself, so an
error is raised where it would have been, with its own message: the worker never decides anything, it only
saves time. Its stderr is discarded for the same reason.

    python -c "...; pimtrail.store.worker.main()"    # what the caller starts: reads (module, name, args), writes the value
"""

from __future__ import annotations

import gc
import importlib
import io
import os
import pickle
import subprocess
import sys
import threading
from typing import Any, Callable


_MAIN = "import sys; from pimtrail.store.worker import main; sys.exit(main())"  # not `-m`: the package imports it


def room_for(size: int) -> bool:
    """Whether the machine has memory available for a worker of ~`size` bytes at its peak (the large tenant's
    first events: 243 MB of audit log, 1.76 GB of worker)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return available > size


class Worker:
    """`fn(*args)` in a fresh process; `result()` its value, or None (see the module). `fn` None: no worker.
    `fn` must be importable by its module and name, `args` picklable, its value picklable and without cycles.
    `needs`: bytes of memory it will use."""

    def __init__(self, fn: Callable[..., Any] | None, *args: Any, needs: int = 0):
        self._proc: subprocess.Popen | None = None
        self._chunks: list[bytes] = []
        if fn is None or not sys.executable or not room_for(needs):
            return
        try:
            payload = pickle.dumps((fn.__module__, fn.__qualname__, args), protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return
        # the caller's import path: the worker imports the same modules (a checkout run in place, a test's)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", _MAIN], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError:
            return
        proc = self._proc
        self._threads = [threading.Thread(target=_send, args=(proc, payload, False), name="pimtrail-worker-in",
                                          daemon=True),
                         threading.Thread(target=_drain, args=(proc, self._chunks), name="pimtrail-worker-out",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()

    def send(self, message: Any) -> None:
        """The second message, for `received()` in the worker; stdin closes after it (not sending one: the
        worker's `received()` gives None, once the caller ends the worker or its own process ends)."""
        if self._proc is None:
            return
        self._threads[0].join()  # the first message is through
        thread = threading.Thread(target=_send, args=(self._proc, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL),
                                                      True), name="pimtrail-worker-in", daemon=True)
        self._threads[0] = thread
        thread.start()

    def _wait(self) -> int:
        proc, self._proc = self._proc, None
        if proc is None:
            return -1
        self._threads[0].join()
        try:
            proc.stdin.close()  # type: ignore[union-attr]  # no second message is coming now
        except (OSError, ValueError):
            pass
        self._threads[1].join()
        proc.stdout.close()  # type: ignore[union-attr]
        return proc.wait()

    def result(self) -> Any:
        """The worker's value, or None when it gave none; waits for it."""
        if self._wait() != 0 or not self._chunks:
            return None
        data, self._chunks = b"".join(self._chunks), []
        try:
            return pickle.loads(data)
        except Exception:  # noqa: BLE001 -- cut short: the caller does the work itself
            return None

    def cancel(self) -> None:
        """Stop the worker (the caller failed or no longer needs it)."""
        if self._proc is not None:
            self._proc.kill()
            self._wait()
        self._chunks = []

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cancel()


def _send(proc: subprocess.Popen, payload: bytes, last: bool) -> None:
    try:
        proc.stdin.write(payload)  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    except (OSError, ValueError):  # it died or was stopped (a broken pipe): result() says None
        last = True
    if last:
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except (OSError, ValueError):
            pass


def _drain(proc: subprocess.Popen, chunks: list[bytes]) -> None:
    out = proc.stdout  # type: ignore[union-attr]
    while chunk := out.read1(1 << 20):
        chunks.append(chunk)


def received() -> Any:
    """In the worker: the caller's second message (`Worker.send`), or None when it sent none."""
    try:
        return pickle.load(sys.stdin.buffer)
    except EOFError:
        return None


def main() -> int:
    gc.disable()  # millions of small objects, no cycles, and the process ends with the call
    module, name, args = pickle.load(sys.stdin.buffer)
    fn: Any = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    value = fn(*args)
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    # without the memo: each object written as often as it is referenced (a value without cycles is whole), at
    # less than half the time (the large first snapshot's 240,000 rows: 0.25 against 0.61 s)
    pickler.fast = True
    pickler.dump(value)
    sys.stdout.buffer.write(out.getbuffer())
    sys.stdout.buffer.flush()
    return 0
