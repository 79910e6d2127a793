"""A daily read against the history reads only the open facts around the elements it did not parse
(`pimtrail.store.openfacts`, docs/architecture.md "Reading what did not change"), and stores exactly what a
full read stores: facts of elements that went away are closed, facts of changed elements get new versions, and
an element read unparsed that no open fact names still makes the store refuse the read."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import event

import exports
from pimtrail.collect import _ingest, read_against
from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore
from pimtrail.store import openfacts
from pimtrail.store.receipts import Unrecognised
from test_daily_ingest import _tables

USERS = [f"cccccccc-0000-4000-8000-{n:012d}" for n in range(1, 41)]


def _days(tmp_path) -> list:
    """Four days of 42 users over three pages: day 1 as day 0; day 2 loses one user (and its registration
    row), renames another and adds a third; day 3 as day 2."""
    def day(n: int, users: list[dict]) -> object:
        data = exports.baseline(f"2026-07-0{n + 1}T06:00:00Z")
        data["role_assignable_groups"] = {"value": []}  # every source of principal facts collected: none carried
        data["users"] = [{"value": users[:1]}, {"value": users[1:20]}, {"value": users[20:]}]
        data["registration_details"] = [{"value": [
            {"id": u["id"], "userPrincipalName": u["userPrincipalName"], "methodsRegistered": ["fido2"]}
            for u in users]}]
        return exports.write(tmp_path / f"day{n}", data)

    before = [exports._user(exports.ALICE, "Alice"), exports._user(exports.BOB, "Bob")]
    before += [exports._user(uid, f"User{n}") for n, uid in enumerate(USERS)]
    after = [dict(u, displayName="Renamed") if u["id"] == USERS[9] else u  # a changed element: a new number
             for u in before if u["id"] != USERS[5]]  # and a leaver
    after.append(exports._user("dddddddd-0000-4000-8000-000000000001", "Joiner"))
    return [day(0, before), day(1, before), day(2, after), day(3, after)]


def _spy(monkeypatch) -> list[tuple[str, int, int]]:
    """(kind, open facts read, open facts naming an element read unparsed) of each kind read around them."""
    seen: list[tuple[str, int, int]] = []
    around = openfacts._around

    def spy(conn, tenant, kind, runs, given, unparsed):
        out = around(conn, tenant, kind, runs, given, unparsed)
        seen.append((kind, len(out.digests), out.unparsed))
        return out

    monkeypatch.setattr(openfacts, "_around", spy)
    return seen


def _read_in_full(tmp_path, days) -> str:
    """A history of `days`, each export read in full: what a read against the history must equal."""
    full = str(tmp_path / "full.db")
    with HistoryStore.open(full, create=True) as store:
        for root in days:
            store.ingest(read_export(root))
    return full


def test_open_facts_are_read_around_the_elements_read_unparsed(tmp_path, monkeypatch):
    """Days 1-3 read against the history: only the open facts of elements that went or changed (and those
    naming none) are read, the rest counted; every table ends as after full reads, the leaver's facts closed,
    the renamed user's principal fact in a new version."""
    days = _days(tmp_path)
    full = _read_in_full(tmp_path, days)
    seen = _spy(monkeypatch)
    against = str(tmp_path / "against.db")
    with HistoryStore.open(against, create=True) as store:
        for root in days:
            snap = read_against(store, root)
            store.ingest(snap)  # never refused: no fallback to a full read
        tenant = store.tenant(None)
        principals = {f["id"]: f for f in store.facts(tenant, "principal", 4)}
        assert USERS[5] not in principals and principals[USERS[9]]["name"] == "Renamed"
        assert USERS[5] not in {f["_key"] for f in store.facts(tenant, "auth_registration", 4)}
        assert [v["valid_to"] for v in store.fact_versions(tenant, "principal", USERS[9])] == [3, None]
        assert store.verify().ok
    assert _tables(full) == _tables(against)
    on_day = {}
    for kind, read, unparsed in seen:
        on_day.setdefault(kind, []).append((read, unparsed))
    # day 1: all 42 users unparsed; day 2: the leaver's and the renamed user's facts are read, 40 counted;
    # day 3: the renamed user's and the joiner's elements are new numbers, read too (as parsed elements' facts)
    assert on_day["principal"][0] == (0, 42) and on_day["principal"][1] == (2, 40)
    assert on_day["auth_registration"][0] == (0, 42) and on_day["auth_registration"][1] == (1, 41)
    assert len(on_day["principal"]) == 3


def test_an_element_read_unparsed_that_no_open_fact_names_is_refused(tmp_path):
    """An element read unparsed gives the open facts naming it. When none does (here: removed behind the
    store's back), the counts in SQL do not add up, every open fact is looked at, and the read is refused
    before anything is written; `pimtrail collect` then reads the export in full."""
    days = _days(tmp_path)
    path = str(tmp_path / "h.db")
    with HistoryStore.open(path, create=True) as store:
        for root in days[:2]:
            store.ingest(read_export(root))
        snap = read_against(store, days[2])
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM fact WHERE key = ?", (USERS[0],))
        before = _tables(path)
        with pytest.raises(Unrecognised, match="names no open fact"):
            store.ingest(snap)
        assert _tables(path) == before
        _ingest(store, snap)  # read again in full: the user's facts are opened again
        tenant = store.tenant(None)
        assert USERS[0] in {f["id"] for f in store.facts(tenant, "principal", 3)}


def test_when_sql_cannot_confirm_the_elements_every_open_fact_is_read(tmp_path, monkeypatch):
    """The fallback: when the counts in SQL do not confirm that each element read unparsed names an open fact,
    all open facts are read and looked at one by one (as before migration 0010); what is stored is the same."""
    days = _days(tmp_path)
    full = _read_in_full(tmp_path, days)
    seen = _spy(monkeypatch)
    monkeypatch.setattr(openfacts, "_named_in", lambda *args: (-1, -1))
    against = str(tmp_path / "against.db")
    with HistoryStore.open(against, create=True) as store:
        for root in days:
            store.ingest(read_against(store, root))
    assert seen == []
    assert _tables(full) == _tables(against)


def test_a_daily_read_against_the_history_on_each_backend(db_url, tmp_path, monkeypatch):
    """The ranges and counts in SQL read the same on SQLite and PostgreSQL: the same snapshots as full reads."""
    days = _days(tmp_path)
    reference = str(tmp_path / "ref.db")
    with HistoryStore.open(reference, create=True) as store:
        for root in days:
            store.ingest(read_export(root))
        expected = [(s.seq, s.fact_count, s.content_hash) for s in store.snapshots()]
    seen = _spy(monkeypatch)
    with HistoryStore.open(db_url, create=True) as store:
        for root in days:
            store.ingest(read_against(store, root))
        assert [(s.seq, s.fact_count, s.content_hash) for s in store.snapshots()] == expected
        assert store.verify().ok
    assert len(seen) >= 9  # three days, three kinds at least


def test_sqlite_looks_keys_and_ranges_up_in_their_indexes(tmp_path):
    """SQLite plans without statistics: every statement of a daily ingest that finds open facts by key uses
    `ix_fact_key`, and every one that reads a range of element numbers seeks it in `ix_fact_open` (not a walk
    over all facts of the kind for each key or range, which the large tenant's day would take minutes for)."""
    days = _days(tmp_path)
    path = str(tmp_path / "h.db")
    statements: list[str] = []
    with HistoryStore.open(path, create=True) as store:
        for root in days[:2]:
            store.ingest(read_export(root))
        store.engine.dispose()  # the next connection is traced
        event.listen(store.engine, "connect", lambda conn, _: conn.set_trace_callback(statements.append))
        store.ingest(read_against(store, days[2]))
    with sqlite3.connect(path) as conn:
        def plan(sql: str) -> str:
            return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))

        by_key = [s for s in statements if " fact" in s and ("key IN (" in s or "key = " in s) and "valid_to IS NULL" in s]
        ranges = [s for s in statements if "f.element_n >" in s]
        assert len(by_key) >= 2 and len(ranges) >= 3  # the versions closed (archive), the keys found again, ...
        for sql in by_key:
            assert "ix_fact_key" in plan(sql), sql[:200]
        for sql in ranges:
            assert "element_n>" in plan(sql).replace(" ", ""), sql[:200]
