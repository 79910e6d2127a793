"""Facts are versioned: one row while unchanged, closed and reopened on change."""

from __future__ import annotations

from datetime import datetime, timedelta

import exports
from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore, archive


def weekly(n: int) -> list[str]:
    start = datetime(2026, 7, 1, 6)
    return [(start + timedelta(weeks=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]


def test_unchanged_fact_is_one_row_across_13_snapshots(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        for when in weekly(13):
            store.ingest(read_export(export(when)))
        versions = store.fact_versions(exports.TENANT, "role_assignment", "inst-alice-ga")
        assert len(store.snapshots()) == 13
    assert len(versions) == 1
    assert versions[0]["valid_from"] == 1 and versions[0]["valid_to"] is None


def test_change_closes_old_version_and_opens_new(export, db_url):
    def extend_bob(data):
        data["role_eligibility_instances"]["value"][0]["endDateTime"] = "2027-06-30T00:00:00Z"

    def remove_alice_ga(data):
        extend_bob(data)
        data["role_assignment_instances"]["value"] = data["role_assignment_instances"]["value"][1:]

    when = weekly(4)
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(when[0])))
        store.ingest(read_export(export(when[1])))
        store.ingest(read_export(export(when[2], extend_bob)))
        store.ingest(read_export(export(when[3], remove_alice_ga)))
        bob = store.fact_versions(exports.TENANT, "role_eligibility", "elig-bob-ga")
        alice = store.fact_versions(exports.TENANT, "role_assignment", "inst-alice-ga")
        before = store.holders_on(exports.TENANT, datetime(2026, 7, 16), exports.GA)
        after = store.holders_on(exports.TENANT, datetime(2026, 7, 23), exports.GA)
        too_early = store.holders_on(exports.TENANT, datetime(2026, 6, 30), exports.GA)

    assert [(v["valid_from"], v["valid_to"]) for v in bob] == [(1, 3), (3, None)]
    assert bob[0]["data"]["end"] == "2026-12-31T00:00:00Z" and bob[1]["data"]["end"] == "2027-06-30T00:00:00Z"
    assert [(v["valid_from"], v["valid_to"]) for v in alice] == [(1, 4)]
    assert {(h["principal_id"], h["state"]) for h in before} == {(exports.ALICE, "active"), (exports.BOB, "eligible")}
    assert {(h["principal_id"], h["state"]) for h in after} == {(exports.BOB, "eligible")}
    assert too_early == []


def test_facts_keep_what_compliance_needs(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export()))
        active = {f["id"]: f for f in store.facts(exports.TENANT, "role_assignment", 1)}
        keys = store.facts(exports.TENANT, "fido2_key", 1)
    alice, bob = active["inst-alice-ga"], active["inst-bob-ex"]
    assert alice["permanent"] is True and alice["outside_pim"] is False
    assert bob["outside_pim"] is True and bob["role_name"] == "Exchange Administrator"
    assert alice["principal_type"] == "user" and alice["member_type"] == "Direct"
    assert [k["user_id"] for k in keys] == [exports.ALICE]


def test_older_export_is_refused_and_same_time_is_skipped(export, db_url, cli):
    assert cli("collect", "--source", export("2026-07-08T06:00:00Z"), "--db", db_url).exit_code == 3
    again = cli("collect", "--source", export("2026-07-08T06:00:00Z"), "--db", db_url)
    assert "already in the history" in again.output
    older = cli("collect", "--source", export("2026-07-01T06:00:00Z"), "--db", db_url)
    assert older.exit_code == 2
    assert "not after the newest snapshot" in older.output


def test_a_dataset_not_collected_leaves_its_facts_as_last_seen(export, db_url):
    """A failed dataset (missing licence, permission) is unknown, not empty: its facts are not closed."""
    def eligibility_failed(data):
        del data["role_eligibility_instances"]
        data["_manifest"]["datasets"]["role_eligibility_instances"] = {"error": {
            "http_status": 400, "code": "AadPremiumLicenseRequired", "message": "licence"}}

    def alice_removed(data):
        data["role_assignment_instances"]["value"] = data["role_assignment_instances"]["value"][1:]

    when = weekly(3)
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(when[0])))
        second = store.ingest(read_export(export(when[1], lambda d: (eligibility_failed(d), alice_removed(d)))))
        bob = store.fact_versions(exports.TENANT, "role_eligibility", "elig-bob-ga")
        alice = store.fact_versions(exports.TENANT, "role_assignment", "inst-alice-ga")
        store.ingest(read_export(export(when[2], eligibility_failed)))
        assert store.verify().ok
        with store.engine.connect() as conn:
            valid_at_2 = conn.exec_driver_sql("SELECT count(*) FROM fact WHERE valid_from <= 2 AND "
                                              "(valid_to IS NULL OR valid_to > 2)").scalar()
            valid_at_2 += sum(1 for _ in archive.versions(conn, exports.TENANT, upto=2, after=2))  # closed since
    assert second.status == "partial"
    assert [(v["valid_from"], v["valid_to"]) for v in bob] == [(1, None)]  # still held, as last seen
    assert [(v["valid_from"], v["valid_to"]) for v in alice] == [(1, 2)]  # collected, and really gone
    assert second.fact_count == valid_at_2  # the carried-forward eligibility counts as held


def test_new_versions_are_written_in_kind_and_key_order(db):
    """A snapshot's new fact versions get their rows (and ids) in (kind, key) order, so that two of `fact`'s
    indexes take them in order: the first snapshot's all, and a later one's rows past the first's (a changed
    fact's new version takes its old row)."""
    import sqlite3

    from pimtrail import collect

    snaps = collect.sample_snapshots()
    with HistoryStore.open(db, create=True) as store:
        collect.ingest_all(store, snaps[:1])
    rows = sqlite3.connect(db).execute("SELECT kind, key FROM fact ORDER BY id").fetchall()
    assert len({kind for kind, _ in rows}) > 5 and rows == sorted(rows)
    with HistoryStore.open(db) as store:
        collect.ingest_all(store, snaps[1:4])
    with sqlite3.connect(db) as conn:
        inserted = []
        for seq in (2, 3, 4):
            later = conn.execute("SELECT kind, key FROM fact WHERE id > (SELECT max(id) FROM fact WHERE valid_from < ?)"
                                 " AND valid_from = ? ORDER BY id", (seq, seq)).fetchall()
            assert later == sorted(later)
            inserted.append(len(later))
    assert max(inserted) > 1  # a later snapshot inserted rows of its own, not only versions in old rows
