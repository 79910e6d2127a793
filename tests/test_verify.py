"""The hash chain detects changed rows and names the first broken snapshot."""

from __future__ import annotations

import sqlite3

import pytest

from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore

WEEKS = ["2026-07-01T06:00:00Z", "2026-07-08T06:00:00Z", "2026-07-15T06:00:00Z"]


@pytest.fixture
def history(export, db):
    def drop_bob(data):
        data["role_eligibility_instances"]["value"] = []

    with HistoryStore.open(db, create=True) as store:
        store.ingest(read_export(export(WEEKS[0])))
        store.ingest(read_export(export(WEEKS[1], drop_bob)))
        store.ingest(read_export(export(WEEKS[2], drop_bob)))
    return db


def tamper(db: str, sql: str) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute(sql).rowcount >= 1


def test_intact_history_verifies(history, cli):
    result = cli("verify", "--db", history)
    assert result.exit_code == 0, result.output
    assert "3 snapshot(s)" in result.output


@pytest.mark.parametrize("sql, broken_seq", [
    # a closed fact (valid in snapshot 1 only) rewritten: Bob's eligibility made permanent
    ("UPDATE fact SET data = json_set(data, '$.end', NULL) WHERE key = 'elig-bob-ga'", 1),
    # an open fact rewritten: Alice's standing GA given an end date
    ("UPDATE fact SET data = json_set(data, '$.end', '2026-08-01T00:00:00Z') WHERE key = 'inst-alice-ga'", 1),
    # history rewritten: Bob's eligibility said to have ended later
    ("UPDATE fact SET valid_to = 3 WHERE key = 'elig-bob-ga'", 2),
    ("UPDATE snapshot SET status = 'complete' WHERE seq = 3", 3),
    ("UPDATE event SET data = json_set(data, '$.result_reason', 'nothing to see') WHERE source_id = 'audit-2'", 1),
    ("UPDATE blob SET data = zeroblob(10) WHERE sha256 = (SELECT sha256 FROM receipt WHERE dataset = 'users' LIMIT 1)", 1),
    ("DELETE FROM coverage WHERE dataset = 'users' AND snapshot_id = (SELECT id FROM snapshot WHERE seq = 2)", 2),
])
def test_tampering_is_detected_at_the_first_affected_snapshot(history, cli, sql, broken_seq):
    tamper(history, sql)
    result = cli("verify", "--db", history)
    assert result.exit_code == 1
    assert f"snapshot #{broken_seq} " in result.output, result.output
