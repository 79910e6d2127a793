"""A collect killed mid-write leaves the history as it was: earlier snapshots intact, no half snapshot."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import exports
from pimtrail.store import HistoryStore

pytestmark = pytest.mark.slow


def big_export(root: Path, users: int) -> Path:
    """The baseline with many users, so that ingest takes long enough to be interrupted."""
    data = exports.baseline("2026-07-08T06:00:00Z")
    data["users"] = [{"value": [exports._user(f"{i:08d}-0000-4000-8000-{i:012d}", f"User{i}")
                                for i in range(start, min(start + 1000, users))]}
                     for start in range(0, users, 1000)]
    return exports.write(root, data)


def test_killed_collect_leaves_no_half_snapshot(export, tmp_path, db, cli):
    assert cli("collect", "--source", export("2026-07-01T06:00:00Z"), "--db", db).exit_code == 3
    root = big_export(tmp_path / "big", 150_000)
    wal = Path(f"{db}-wal")
    proc = subprocess.Popen([sys.executable, "-m", "pimtrail.cli", "collect", "--source", str(root), "--db", db],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The CLI prints "Collecting" once the database is open and the transaction is about to start;
    # wait until the write has put pages into the WAL, then kill without warning.
    assert proc.stdout.readline().startswith("Collecting")
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 2_000_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "collect finished before it could be interrupted: make the export bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM fact WHERE valid_from > 1").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM receipt_list WHERE snapshot_id NOT IN (SELECT id FROM snapshot)").fetchone()[0] == 0
    with HistoryStore.open(db) as store:
        assert [s.seq for s in store.snapshots()] == [1]
        assert store.verify().ok
    listing = json.loads(cli("snapshots", "--db", db, "--format", "json").output)
    assert len(listing) == 1 and listing[0]["collected_at"] == "2026-07-01T06:00:00Z"
    # and the interrupted collection can simply be run again
    assert cli("collect", "--source", root, "--db", db).exit_code == 3
    assert len(json.loads(cli("snapshots", "--db", db, "--format", "json").output)) == 2
