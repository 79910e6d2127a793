"""The hash chain detects changed rows and names the first broken snapshot."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine

from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore, archive
from pimtrail.store.engine import resolve_url

WEEKS = ["2026-07-01T06:00:00Z", "2026-07-08T06:00:00Z", "2026-07-15T06:00:00Z"]


@pytest.fixture
def history(export, db_url):
    def drop_bob(data):
        data["role_eligibility_instances"]["value"] = []

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(WEEKS[0])))
        store.ingest(read_export(export(WEEKS[1], drop_bob)))
        store.ingest(read_export(export(WEEKS[2], drop_bob)))
    return db_url


def tamper(db: str, sql: dict[str, str] | str) -> None:
    """Change rows behind pimtrail's back, in the backend's own SQL dialect."""
    engine = create_engine(resolve_url(db))
    try:
        statement = sql if isinstance(sql, str) else sql[engine.dialect.name]
        with engine.begin() as conn:
            assert conn.exec_driver_sql(statement).rowcount >= 1
    finally:
        engine.dispose()


def json_set(column: str, path: str, sqlite_value: str, json_value: str) -> dict[str, str]:
    """Set one field of a stored JSON text: SQLite's json_set, PostgreSQL's jsonb_set (back to text)."""
    return {"sqlite": f"{column} = json_set({column}, '$.{path}', {sqlite_value})",
            "postgresql": f"{column} = jsonb_set({column}::jsonb, '{{{path}}}', '{json_value}')::text"}


def update(table: str, change: dict[str, str], where: str) -> dict[str, str]:
    return {dialect: f"UPDATE {table} SET {assignment} WHERE {where}" for dialect, assignment in change.items()}


def test_intact_history_verifies(history, cli):
    result = cli("verify", "--db", history)
    assert result.exit_code == 0, result.output
    assert "3 snapshot(s)" in result.output


FIRST_USERS_LISTING = "sha256 = (SELECT sha256 FROM receipt_list WHERE dataset = 'users' ORDER BY id LIMIT 1)"
ZEROS = {"sqlite": "zeroblob({n})", "postgresql": "decode(repeat('00', {n}), 'hex')"}


def zero(column: str, n: int) -> dict[str, str]:
    return {dialect: f"{column} = {value.format(n=n)}" for dialect, value in ZEROS.items()}


@pytest.mark.parametrize("sql, broken_seq", [
    # an open fact rewritten: Alice's standing GA given an end date
    (update("fact", json_set("data", "end", "'2026-08-01T00:00:00Z'", '"2026-08-01T00:00:00Z"'),
            "key = 'inst-alice-ga'"), 1),
    # history rewritten: Bob's eligibility (valid in snapshot 1 only, closed since) said to have ended later
    ("UPDATE fact_archive SET valid_to = 3 WHERE kind = 'role_eligibility'", 2),
    ("UPDATE snapshot SET status = 'complete' WHERE seq = 3", 3),
    (update("event", zero("zdata", 10), "source_id = 'audit-2'"), 1),  # an event's data no longer decompresses
    # an event's frame forged to claim 2**40 bytes: refused, not allocated
    (update("event", {"sqlite": "zdata = X'28B52FFDE000000000000100000000'",
                      "postgresql": "zdata = decode('28b52ffde000000000000100000000', 'hex')"}, "source_id = 'audit-2'"), 1),
    (update("blob", zero("data", 10), FIRST_USERS_LISTING), 1),  # which pages a dataset had
    (update("item_pack", zero("data", 10), "first_n = 1"), 1),  # the text of the first elements
    (update("item_pack", zero("digests", 16), "first_n = 1"), 1),  # the elements' digests
    # the elements' frame forged to claim 2**40 bytes: refused, not allocated
    (update("item_pack", {"sqlite": "data = X'28B52FFDE000000000000100000000'",
                          "postgresql": "data = decode('28b52ffde000000000000100000000', 'hex')"}, "first_n = 1"), 1),
    ("DELETE FROM coverage WHERE dataset = 'users' AND snapshot_id = (SELECT id FROM snapshot WHERE seq = 2)", 2),
], ids=["open-fact", "validity", "snapshot-row", "event-frame", "event-frame-size", "listing", "element-text",
         "element-digest", "element-frame-size", "coverage"])
def test_tampering_is_detected_at_the_first_affected_snapshot(history, cli, sql, broken_seq):
    tamper(history, sql)
    result = cli("verify", "--db", history)
    assert result.exit_code == 1
    assert f"snapshot #{broken_seq} " in result.output, result.output


def test_an_event_rewritten_and_compressed_again_is_detected(history, cli):
    """Event data is stored compressed (`pimtrail.store.eventdata`): a changed text compressed again as the
    store would is still found, since `verify` hashes the text the frame holds."""
    from sqlalchemy import select, update as sql_update

    from pimtrail.store.eventdata import Codec
    from pimtrail.store.schema import event_table

    engine = create_engine(resolve_url(history))
    try:
        with engine.begin() as conn:
            tenant, zdata = conn.execute(select(event_table.c.tenant_id, event_table.c.zdata)
                                         .where(event_table.c.source_id == "audit-2")).one()
            codec = Codec.load(conn, tenant)
            event = json.loads(codec.decompress(zdata))
            event["result_reason"] = "nothing to see"
            conn.execute(sql_update(event_table).where(event_table.c.source_id == "audit-2").values(
                zdata=codec.compress(json.dumps(event, sort_keys=True, separators=(",", ":")))))
    finally:
        engine.dispose()
    result = cli("verify", "--db", history)
    assert result.exit_code == 1
    assert "snapshot #1 " in result.output, result.output


def made_permanent(text: str) -> str:
    fact = json.loads(text)
    fact["end"] = None
    return json.dumps(fact, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("edit, message", [
    # Bob's closed eligibility (valid in snapshot 1 only) made permanent, and stored compressed again
    (lambda data: archive.pack([r[:6] + [made_permanent(r[6])] + r[7:] for r in archive.unpack(data)]),
     "state facts differ"),
    (lambda data: b"\0" * 10, "batch(es) of the fact versions it closed do not read"),
], ids=["rewritten", "unreadable"])
def test_an_archived_version_changed_is_detected(history, cli, edit, message):
    """Closed versions are kept compressed in batches (`pimtrail.store.archive`): one rewritten and compressed
    again as the store would is found by its hash; a batch that does not read is named, not skipped over."""
    from sqlalchemy import select, update as sql_update

    from pimtrail.store.schema import fact_archive_table as t

    engine = create_engine(resolve_url(history))
    try:
        with engine.begin() as conn:
            data = conn.execute(select(t.c.data).where(t.c.kind == "role_eligibility")).scalar_one()
            assert [json.loads(r[6])["end"] is not None for r in archive.unpack(data)] == [True]
            conn.execute(sql_update(t).where(t.c.kind == "role_eligibility").values(data=edit(data)))
    finally:
        engine.dispose()
    result = cli("verify", "--db", history)
    assert result.exit_code == 1
    assert "snapshot #1 " in result.output, result.output  # where Bob's version began
    with HistoryStore.open(history) as store:
        problems = {check.seq: check.problems for check in store.verify().checks}
    assert any(message in p for p in problems[1] + problems[2]), problems  # the batch closed by #2 named
