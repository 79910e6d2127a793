"""Closed fact versions are kept compressed apart from the open ones (`pimtrail.store.archive`, migration
0008). Every reader gives what it gave when closed versions stayed rows of `fact`: a history is read, taken
back to 0007 by the migration's own downgrade (each archived version a closed row again, as before 0008),
migrated forward again, and read again."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from importlib import resources

import pytest
from sqlalchemy import text

from pimtrail import collect
from pimtrail.collectors.exportdir import read_export
from pimtrail.config import parse_config
from pimtrail.controls.profiles import load_profile
from pimtrail.evidence.series import build_series
from pimtrail.store import HistoryStore, archive
from test_migrations import downgrade

PER_USER = ("principal", "sign_in_activity", "auth_registration", "fido2_key")


@pytest.fixture
def sample_quarter(db_url):
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, collect.sample_snapshots())
    return db_url


def _kinds(store, tenant: str) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(set(conn.execute(text("SELECT DISTINCT kind FROM fact WHERE tenant_id = :t"), {"t": tenant})
                          .scalars()) | {batch[0] for batch in archive.batches(conn, tenant)})


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def readings(store) -> dict:
    """What every reader of versions gives, at every snapshot of the history."""
    tenant = store.tenant(None)
    snaps = store.snapshots(tenant)
    last = snaps[-1].seq
    kinds = _kinds(store, tenant)
    principals = sorted(p["id"] for p in store.facts(tenant, "principal", 1))[::7]
    out: dict = {}
    for snap in snaps:
        seq = snap.seq
        for kind in kinds:
            out[seq, kind] = store.facts(tenant, kind, seq)
            out[seq, kind, "principals"] = store.facts(tenant, kind, seq, principal_ids=iter(principals))
            out[seq, kind, "contains"] = store.facts(tenant, kind, seq, contains=iter(["admin", "Lena"]))
        out[seq, "per-user"] = store.principal_facts(tenant, PER_USER, seq, principals)
        out[seq, "counts"] = sorted(map(_canon, store.fact_counts(tenant, "access_review_decision", seq,
                                                                  ("decision", "instance_id"))))
        out[seq, "holders"] = store.holders_on(tenant, snap.collected_at + timedelta(minutes=1))
    for kind in kinds:
        for name, args in {"all": {}, "after": {"after_seq": last // 2},
                           "fields": {"fields": ("principal_id", "role_id", "end")},
                           "principals": {"principal_ids": iter(principals), "after_seq": 1}}.items():
            rows = store.version_rows(tenant, kind, last, **args)
            out[kind, name] = list(map(_canon, rows))  # oldest first, by key in a snapshot: the same order
            assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        keys = {f["_key"] for f in store.facts(tenant, kind, 1)}
        for key in sorted(keys)[:5]:
            out[kind, key] = store.fact_versions(tenant, kind, key)
            out[kind, key, "after"] = store.fact_versions(tenant, kind, key, after_seq=last // 2)
    return out


def test_every_reader_gives_what_closed_rows_gave(sample_quarter):
    with HistoryStore.open(sample_quarter) as store:
        tenant = store.tenant(None)
        with store.engine.connect() as conn:
            closed_rows = conn.execute(text("SELECT count(*) FROM fact WHERE valid_to IS NOT NULL")).scalar()
            archived = sum(1 for _ in archive.versions(conn, tenant))
        assert store.verify().ok
        archived_reads = readings(store)
    assert closed_rows == 0 and archived > 100  # the sample quarter changes: all its closed versions archived

    downgrade(sample_quarter, "0007")
    with HistoryStore.open(sample_quarter, create=True) as store:  # back to the newest revision, archive empty
        with store.engine.connect() as conn:
            rows_again = conn.execute(text("SELECT count(*) FROM fact WHERE valid_to IS NOT NULL")).scalar()
            assert not list(archive.batches(conn, tenant))
        assert store.verify().ok
        row_reads = readings(store)
    assert rows_again == archived
    assert archived_reads.keys() == row_reads.keys()
    assert [k for k in archived_reads if archived_reads[k] != row_reads[k]] == []


def test_the_trend_is_the_same_read_from_the_archive(sample_quarter):
    config = parse_config(tomllib.loads((resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()),
                          "sample_data/pimtrail.toml")

    def series_json() -> str:
        with HistoryStore.open(sample_quarter, create=True) as store:
            series = build_series(store, store.tenant(None), load_profile(None, config), config)
        return _canon(series)

    archived = series_json()
    downgrade(sample_quarter, "0007")
    assert series_json() == archived


def test_a_changed_fact_keeps_its_row_and_its_old_version_is_archived(export, db_url):
    def extend_bob(data):
        data["role_eligibility_instances"]["value"][0]["endDateTime"] = "2027-06-30T00:00:00Z"

    def remove_alice_ga(data):
        data["role_assignment_instances"]["value"] = data["role_assignment_instances"]["value"][1:]

    def rows(store):
        with store.engine.connect() as conn:
            return {key: (ident, vf, vt) for ident, key, vf, vt in conn.execute(text(
                "SELECT id, key, valid_from, valid_to FROM fact WHERE key IN ('elig-bob-ga', 'inst-alice-ga')"))}

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        before = rows(store)
        store.ingest(read_export(export("2026-07-08T06:00:00Z", lambda d: (extend_bob(d), remove_alice_ga(d)))))
        after = rows(store)
        with store.engine.connect() as conn:
            closed = {(v.kind, v.key): (v.id, v.valid_from, v.valid_to) for v in archive.versions(conn, store.tenant(None))}
        bob = store.fact_versions(store.tenant(None), "role_eligibility", "elig-bob-ga")
        assert store.verify().ok
    assert after == {"elig-bob-ga": (before["elig-bob-ga"][0], 2, None)}  # the new version in the old row
    assert closed == {("role_eligibility", "elig-bob-ga"): (before["elig-bob-ga"][0], 1, 2),
                      ("role_assignment", "inst-alice-ga"): (before["inst-alice-ga"][0], 1, 2)}
    assert [(v["valid_from"], v["valid_to"], v["data"]["end"]) for v in bob] == [
        (1, 2, "2026-12-31T00:00:00Z"), (2, None, "2027-06-30T00:00:00Z")]


def test_an_unreadable_batch_is_a_one_line_error_not_a_pass(export, db_url):
    def remove_alice_ga(data):
        data["role_assignment_instances"]["value"] = data["role_assignment_instances"]["value"][1:]

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        store.ingest(read_export(export("2026-07-08T06:00:00Z", remove_alice_ga)))
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE fact_archive SET data = :d"), {"d": b"not zstd"})
        with pytest.raises(archive.ArchiveError, match="role_assignment fact versions closed by snapshot #2"):
            store.facts(store.tenant(None), "role_assignment", 1)


def test_a_reader_sees_one_snapshot_while_an_ingest_commits(export, db_url, monkeypatch):
    """A reader reads the rows of `fact`, then the archive: an ingest committing in between must not show it a
    changed fact twice (its old row, then archived), so both reads see one snapshot of the database."""
    def extend_bob(data):
        data["role_eligibility_instances"]["value"][0]["endDateTime"] = "2027-06-30T00:00:00Z"

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        tenant = store.tenant(None)
    second = read_export(export("2026-07-08T06:00:00Z", extend_bob))
    read_archive, done = archive.versions, []

    def ingest_in_between(*args, **kwargs):
        if not done:
            with HistoryStore.open(db_url) as writer:
                done.append(writer.ingest(second))
        return read_archive(*args, **kwargs)

    monkeypatch.setattr(archive, "versions", ingest_in_between)
    with HistoryStore.open(db_url) as reader:
        keys = [f["_key"] for f in reader.facts(tenant, "role_eligibility", 1)]
        rows = reader.version_rows(tenant, "role_eligibility", 2)
    assert done and done[0].seq == 2
    assert keys == ["elig-bob-ga"]  # once, as snapshot 1 had it
    assert [(vf, vt) for vf, vt, _ in rows] == [(1, 2), (2, None)]  # read after the ingest: both versions, once


@pytest.mark.parametrize("change, problem", [
    ("UPDATE fact_archive SET count = count + 1", "batch(es) of the fact versions it closed do not read as stored"),
    ("INSERT INTO fact_archive (tenant_id, kind, valid_to, count, data) SELECT tenant_id, kind, 999, count, data "
     "FROM fact_archive", "batch(es) of closed fact versions name no snapshot of the tenant"),
], ids=["count", "orphan"])
def test_an_archive_readers_would_misread_does_not_verify(export, db_url, change, problem):
    def remove_alice_ga(data):
        data["role_assignment_instances"]["value"] = data["role_assignment_instances"]["value"][1:]

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        store.ingest(read_export(export("2026-07-08T06:00:00Z", remove_alice_ga)))
        assert store.verify().ok
        with store.engine.begin() as conn:
            conn.execute(text(change))
        report = store.verify()
    assert not report.ok
    assert any(problem in p for check in report.checks for p in check.problems), report.checks
