"""The worker process (`pimtrail.store.worker`): a function run in a fresh interpreter, its value or nothing, a
second message, parts given before the value, the caller's code only, and stopped when no longer needed. What
the first ingest makes with it is tested in test_first_ingest.py."""

from __future__ import annotations

import os
import time

from pimtrail.store import appending
from pimtrail.store.worker import Worker


def test_a_worker_gives_its_value_or_nothing():
    assert Worker(sum, [1, 2, 3]).result() == 6
    assert Worker(len, None).result() is None  # it raised
    assert Worker(None).result() is None
    pid = Worker(os.getpid).result()
    assert isinstance(pid, int) and pid != os.getpid()  # it ran elsewhere
    assert Worker(os.getpid, needs=1 << 60).result() is None  # no memory for it: none started


def test_a_workers_value_is_taken_before_its_process_ended_and_the_process_is_reaped():
    """`result()` gives the value once read, not once the process ended (a thread reaps it); `cancel()` right after
    finds nothing to stop, and the process is reaped whichever comes first."""
    import gc
    import threading

    for cancel in (False, True):
        job = Worker(sum, [1, 2])
        assert job.result() == 3 and not job.running
        if cancel:
            job.cancel()
        for thread in threading.enumerate():
            if thread.name == "pimtrail-worker-reap":
                thread.join(10)
        assert not [t for t in threading.enumerate() if t.name.startswith("pimtrail-worker")]
        gc.collect()
        children = [p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == os.getpid()]
        assert not [p for p in children if _state(p) == "Z"]  # no zombie left


def _parent(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _state(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def test_a_worker_takes_a_second_message_when_it_comes():
    job = Worker(_both, "first")
    job.send({"second": 2})
    assert job.result() == ("first", {"second": 2})
    assert Worker(_both, "first").result() == ("first", None)  # none sent: `received()` gives None


def _both(first):
    from pimtrail.store.worker import received

    return first, received()


def test_a_worker_gives_parts_of_its_value_before_it_returns():
    job = Worker(_in_parts, 3)
    assert [job.part(), job.part(), job.part()] == [0, 1, 2]
    assert job.part() is None and job.result() == "done"  # no more parts: then its value
    assert job.part() is None
    job = Worker(_in_parts, 3)
    assert job.part() == 0 and job.result() == "done"  # parts not taken are dropped
    job = Worker(_in_parts, 2, True)
    assert [job.part(), job.part(), job.part()] == [0, 1, None] and job.result() is None  # it raised after them
    assert Worker(None).part() is None
    job = Worker(_in_parts, 2)
    job.cancel()
    assert job.part() is None and job.result() is None


def _in_parts(n, fail=False):
    from pimtrail.store.worker import give

    for i in range(n):
        give(i)
    if fail:
        raise RuntimeError("after the parts")
    return "done"


def test_a_worker_dropped_unwaited_is_stopped():
    job = Worker(time.sleep, 60)
    proc = job._proc
    assert proc is not None
    del job
    assert proc.returncode is not None  # killed and reaped by its finaliser


def test_a_worker_runs_the_callers_code_only(tmp_path, monkeypatch):
    """Started from a folder holding another pimtrail, or after a module it runs changed: no value."""
    (tmp_path / "pimtrail").mkdir()
    (tmp_path / "pimtrail" / "__init__.py").write_text("raise SystemExit(7)\n")
    monkeypatch.chdir(tmp_path)
    assert Worker(_both, "first").result() == ("first", None)  # the current folder is not on its path
    from pimtrail.store import hashing
    from pimtrail.store import worker

    code = worker._code

    def changed():  # as if hashing.py had been rewritten after this process imported it
        return [(n, f, size + 1 if n == hashing.__name__ else size, t) for n, f, size, t in code()]

    monkeypatch.setattr(worker, "_code", changed)
    assert Worker(_hashed).result() is None
    job = Worker(_in_parts, 1)  # nor a part
    assert job.part() is None and job.result() is None
    import pimtrail.evidence.render as render  # noqa: F401 -- the worker imports it only after a first part

    def changed_later():  # a module the function imports after its first part
        return [(n, f, size + 1 if n == render.__name__ else size, t) for n, f, size, t in code()]

    monkeypatch.setattr(worker, "_code", changed_later)
    job = Worker(_part_then_import)
    assert job.part() == "before" and job.part() is None and job.result() is None
    monkeypatch.setattr(worker, "_code", code)
    assert Worker(_hashed).result() == hashing.sha256_hex(b"x")


def _part_then_import():
    from pimtrail.store.worker import give

    give("before")
    import pimtrail.evidence.render  # noqa: F401 -- not the caller's file: what follows is not given

    give("after")
    return "done"


def test_a_worker_that_prints_still_gives_its_value():
    job = Worker(_prints)
    assert job.part() == "part" and job.result() == "value"


def _prints():
    from pimtrail.store.worker import give

    print("chatter on stdout", flush=True)
    give("part")
    print("more", flush=True)
    return "value"


def test_rows_not_asked_for_before_the_rest_was_sent_are_none():
    """`rows` before `finish`: the worker would wait for the rest, so it is stopped instead of waited for."""
    job = appending.FirstEvents(Worker(_both, "first"))
    proc = job._worker._proc
    assert job.rows([]) is None and proc.returncode is not None


def _hashed():
    from pimtrail.store import hashing

    return hashing.sha256_hex(b"x")


def test_a_worker_no_longer_needed_is_stopped():
    with Worker(time.sleep, 60) as job:
        proc = job._proc
        assert proc is not None
    assert proc.returncode is not None  # killed and reaped
    assert job.result() is None


def test_the_worker_making_a_first_snapshots_rows_starts_without_the_schema():
    """The worker imports what `prepare_audit` runs, and runs it without importing more: SQLAlchemy and the schema
    (~0.4 s of its start, on the path the ingest waits for) are imported only where the history is read or
    written."""
    import subprocess
    import sys

    probe = ("import sys, tempfile, os\n"
             "from datetime import datetime\n"
             "from pimtrail.store.worker import main\n"
             "from pimtrail.store import appending, joined, eventdata, rowsfile\n"
             "from pimtrail.collectors import exportdir\n"
             "from pimtrail import activations\n"
             "from pimtrail.model import EventRecord\n"
             # what prepare_audit runs after the reading: the rows, the file, the activations
             "events = [EventRecord('audit', f'e{i}', datetime(2026, 7, 1, 0, i), {'id': f'e{i}', 'time': "
             "f'2026-07-01T00:{i:02d}:00Z', 'activity': 'Add member to role completed (PIM activation)', "
             "'correlation_id': 'c1', 'details': {'StartTime': '2026-07-01T00:00:00Z'}}, correlation_id='c1') "
             "for i in range(3)]\n"
             "prepared, codec = appending._new_events('t', 1, events, set(), {}, True, eventdata.Codec.first)\n"
             "folder = tempfile.mkdtemp()\n"
             "rowsfile.write(os.path.join(folder, 'rows.db'), appending.FILE_COLUMNS, "
             "[r[1:-1] for r in prepared.rows])\n"
             "updated, new = appending.activation_rows(None, 't', 1, prepared.audit, codec, True)\n"
             "assert len(new) == 1\n"
             "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'pimtrail.store.schema', 'pimtrail.store.history')"
             " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_event_widths_the_worker_checks_are_the_schemas():
    from pimtrail.store.columns import EVENT, width
    from pimtrail.store.schema import event_table

    assert EVENT.name == event_table.name
    assert EVENT.widths == {column: width(event_table, column) for column in EVENT.widths}


def test_a_workers_output_pipe_holds_a_megabyte_where_the_system_allows_it():
    """A part of a few MB goes through in a few reads, not one per 64 kB (the caller's draining thread waits for the
    GIL between reads, and the worker for it)."""
    import sys

    import pytest

    if not sys.platform.startswith("linux"):
        pytest.skip("F_SETPIPE_SZ is Linux's")
    import fcntl

    with Worker(time.sleep, 5) as job:
        size = fcntl.fcntl(job._proc.stdout.fileno(), getattr(fcntl, "F_GETPIPE_SZ", 1032))
    assert size >= 1 << 20
    data = bytes(range(256)) * (12 << 10)  # 3 MB, given whole
    assert Worker(bytes, data).result() == data
