"""Reads by principal (migration 0011): `ix_fact_principal` holds only the facts whose principal is not their key;
a principal's, its registration's and its sign-ins' facts are found by their key. Every reader by principal gives
what filtering the whole read by the fact's principal column gives, on both backends, through an index."""

from __future__ import annotations

import sqlite3

from sqlalchemy import event, text

from pimtrail import collect
from pimtrail.store import HistoryStore


def _principals(store, tenant: str) -> dict[str, dict[str, str | None]]:
    """kind -> key -> the fact's principal column, for the open facts (a one-snapshot history has no other)."""
    out: dict[str, dict[str, str | None]] = {}
    with store.engine.connect() as conn:
        for kind, key, principal in conn.execute(text("SELECT kind, key, principal_id FROM fact WHERE tenant_id = :t"),
                                                 {"t": tenant}):
            out.setdefault(kind, {})[key] = principal
    return out


def _reads(store, tenant: str, wanted: list[str]) -> dict:
    by_kind = _principals(store, tenant)
    out = {kind: store.facts(tenant, kind, 1, principal_ids=wanted) for kind in by_kind}
    out["per-user"] = store.principal_facts(tenant, sorted(by_kind), 1, wanted)
    out["versions"] = {kind: store.version_rows(tenant, kind, 1, principal_ids=wanted) for kind in by_kind}
    return out


def test_reads_by_principal_give_the_whole_read_filtered(db_url):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(collect.sample_snapshots()[0])
        tenant = store.tenant(None)
        by_kind = _principals(store, tenant)
        keyed = {kind for kind, facts in by_kind.items() if all(p == k for k, p in facts.items())}
        other = {kind for kind, facts in by_kind.items() if any(p is not None and p != k for k, p in facts.items())}
        assert {"principal", "auth_registration"} <= keyed and {"role_eligibility", "role_assignment"} <= other
        everyone = sorted({p for facts in by_kind.values() for p in facts.values() if p})
        wanted = everyone[::3] + ["not-a-principal"]
        reads = _reads(store, tenant, wanted)
        found = 0
        for kind, facts in by_kind.items():
            expected = [f for f in store.facts(tenant, kind, 1) if facts[f["_key"]] in wanted]
            assert reads[kind] == expected, kind
            assert reads["per-user"][kind] == expected, kind
            assert [v[2] for v in reads["versions"][kind]] == [{k: v for k, v in f.items() if k != "_key"}
                                                                for f in expected], kind
            found += len(expected)
        assert found > 10 and all(reads[kind] for kind in ("principal", "role_eligibility"))


def test_reads_by_principal_go_through_an_index(db, monkeypatch):
    """SQLite plans without statistics: each branch is read through its index (the partial index only where the
    statement names its condition as written), never by walking the kind's facts."""
    with HistoryStore.open(db, create=True) as store:
        store.ingest(collect.sample_snapshots()[0])
        tenant = store.tenant(None)
        by_kind = _principals(store, tenant)
        wanted = sorted({p for facts in by_kind.values() for p in facts.values() if p})[::3]
        store.engine.dispose()  # the next connection is traced
        statements: list[str] = []
        event.listen(store.engine, "connect", lambda conn, _: conn.set_trace_callback(statements.append))
        _reads(store, tenant, wanted)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'ix_fact_principal'").fetchone()[0] \
            .endswith("WHERE principal_id <> key")
        reads = [s for s in statements if "FROM fact" in s and ("principal_id IN (" in s or "principal_id = " in s)]
        assert len(reads) >= 2 * len(by_kind) + 1
        for sql in reads:
            plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
            branches = [("principal_id IN (" in sql, "ix_fact_principal"), ("principal_id = " in sql, "ix_fact_key")]
            assert all(index in plan for named, index in branches if named) and "SCAN" not in plan, (sql[:300], plan)
