"""Recompute the hash chain from the stored rows and name the first snapshot that does not match."""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import zstandard
from sqlalchemy import select
from sqlalchemy.engine import Connection

from pimtrail.activations import activation_row, fold_stored
from pimtrail.store import archive as _archive
from pimtrail.store import blobs as _blobs
from pimtrail.store import event_archive as _earc
from pimtrail.store import hashing
from pimtrail.store import joined as _joined
from pimtrail.store import packs as _packs
from pimtrail.store import receipts as _receipts
from pimtrail.store.eventdata import Codec, EventDataError
from pimtrail.store.ingest import content_hash
from pimtrail.store.schema import (blob_table, coverage_table, event_table, fact_table,
                                   item_pack_table, receipt_list_table, snapshot_table)


@dataclass
class SnapshotCheck:
    tenant_id: str
    seq: int
    snapshot_id: int
    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    checks: list[SnapshotCheck]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def first_broken(self) -> SnapshotCheck | None:
        return next((c for c in self.checks if not c.ok), None)


def verify_tenant(conn: Connection, tenant: str) -> list[SnapshotCheck]:
    added: dict[int, int] = defaultdict(int)
    removed: dict[int, int] = defaultdict(int)
    empty: dict[int, int] = defaultdict(int)  # seq -> versions said to end where (or before) they begin
    for kind, key, data, valid_from, valid_to in conn.execute(
            select(fact_table.c.kind, fact_table.c.key, fact_table.c.data, fact_table.c.valid_from,
                   fact_table.c.valid_to).where(fact_table.c.tenant_id == tenant)):
        value = hashing.element(kind, key, hashing.text_digest(data))
        added[valid_from] += value
        if valid_to is not None:
            removed[valid_to] += value
            empty[valid_from] += valid_to <= valid_from  # would add and remove itself: no trace in any digest
    unarchived: dict[int, int] = defaultdict(int)  # seq -> batches of versions it closed that do not read
    closers: set[int] = set()  # the snapshots batches name as closing them
    for kind, valid_to, count, data in _archive.batches(conn, tenant):  # closed versions kept apart (0008)
        closers.add(valid_to)
        try:
            closed = list(_archive.records(kind, valid_to, data))
        except _archive.ArchiveError:  # left out: the state digests then differ from where its versions began
            unarchived[valid_to] += 1
            continue
        unarchived[valid_to] += len(closed) != count  # what a reader would take for the batch's size
        for v in closed:  # hashed as rows are
            value = hashing.element(v.kind, v.key, hashing.text_digest(v.data))
            added[v.valid_from] += value
            removed[v.valid_to] += value
            empty[v.valid_from] += v.valid_to <= v.valid_from

    events: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    unreadable: dict[int, int] = defaultdict(int)  # seq -> events whose stored data does not decompress
    slots: dict[str, list] = {}  # the activations the audit events make (pimtrail.activations.fold_stored)
    decompress = Codec.load(conn, tenant).decompress
    archived = _ArchivedEvents(conn, tenant)  # the days past the audit window (0009), then the rows
    text_of = _earc.passing(decompress)  # an archived event comes as its text
    brought: dict[tuple[str, str], int] = {}  # (kind, source id) -> the snapshot that brought it
    twice: dict[int, int] = defaultdict(int)  # seq -> events it brought that were stored already
    for kind, source_id, zdata, first_seen, correlation, occurred_at in itertools.chain(archived, conn.execute(
            select(event_table.c.kind, event_table.c.source_id, event_table.c.zdata, event_table.c.first_seen,
                   event_table.c.correlation_id, event_table.c.occurred_at).where(event_table.c.tenant_id == tenant))):
        if (kind, source_id) in brought:  # the unique index covers the rows only (0009)
            twice[max(brought[kind, source_id], first_seen)] += 1
        else:
            brought[kind, source_id] = first_seen
        try:
            data = text_of(zdata)
        except EventDataError:
            unreadable[first_seen] += 1
            events[first_seen].append((kind, source_id, ""))  # no digest: the content hash cannot match
            continue
        events[first_seen].append((kind, source_id, hashing.text_digest(data)))
        if kind == "audit" and correlation:
            fold_stored(slots, correlation, source_id, occurred_at, data, first_seen)

    def readable(zdata: bytes) -> str:  # an event that does not decompress is counted above, joined as no event
        try:
            return decompress(zdata)
        except EventDataError:
            return "{}"

    joins = _joined.join_all(conn, tenant, readable, archive="readable")  # an unreadable batch is counted above
    derived = _activations_differ(conn, tenant, slots, joins, decompress)

    bad_blobs = set()
    stored = {sha: bytes(data) for sha, data in conn.execute(select(blob_table.c.sha256, blob_table.c.data)
                                                             .where(blob_table.c.tenant_id == tenant))}
    for sha, data in stored.items():  # a listing stored as a delta is checked as the text its chain gives
        try:
            if hashlib.sha256(_blobs.text_of(data, stored.get)).hexdigest() != sha:
                bad_blobs.add(sha)
        except _blobs.BlobError:
            bad_blobs.add(sha)
    known_blobs = set(stored)
    bad_items = _bad_items(conn, tenant)

    by_snapshot: dict[int, list[dict]] = defaultdict(list)
    for row in conn.execute(select(coverage_table).where(coverage_table.c.tenant_id == tenant)).mappings():
        by_snapshot[row["snapshot_id"]].append(dict(row))
    lists: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for snapshot_id, dataset, sha in conn.execute(
            select(receipt_list_table.c.snapshot_id, receipt_list_table.c.dataset, receipt_list_table.c.sha256)
            .where(receipt_list_table.c.tenant_id == tenant)):
        lists[snapshot_id].append((dataset, sha))
    listings: dict[str, _Listing] = {}

    checks, state, prev_chain, expected_seq = [], 0, hashing.GENESIS, 1
    for snap in conn.execute(select(snapshot_table).where(snapshot_table.c.tenant_id == tenant)
                             .order_by(snapshot_table.c.seq)).mappings():
        problems = []
        seq = snap["seq"]
        if seq != expected_seq:
            problems.append(f"sequence gap: expected snapshot #{expected_seq}, found #{seq}")
        expected_seq = seq + 1
        state = (state + added.get(seq, 0) - removed.get(seq, 0)) % hashing.MOD
        state_hex = format(state, "064x")
        if state_hex != snap["state_digest"]:
            problems.append("state facts differ from what was recorded")
        mine, bound, missing, broken = [], [], 0, 0
        for dataset, sha in lists.get(snap["id"], []):
            if sha not in listings:
                listings[sha] = _Listing(conn, tenant, sha, known_blobs, bad_blobs, bad_items)
            one = listings[sha]
            mine += [dict(e, dataset=dataset) for e in one.entries]
            missing, broken = missing + one.missing, broken + one.broken
            if one.layouts:
                bound.append([dataset, sha])
        if missing:
            problems.append(f"{missing} raw receipt(s) missing")
        if broken:
            problems.append(f"{broken} raw receipt(s) do not match their sha256")
        if unarchived.get(seq):
            problems.append(f"{unarchived[seq]} batch(es) of the fact versions it closed do not read as stored")
        if empty.get(seq):
            problems.append(f"{empty[seq]} fact version(s) beginning here end where they begin")
        if unreadable.get(seq):
            problems.append(f"{unreadable[seq]} event(s) whose stored data does not decompress")
        if twice.get(seq):
            problems.append(f"{twice[seq]} event(s) stored again under a kind and source id stored before")
        if len(events.get(seq, [])) != snap["event_count"]:
            problems.append("events differ from what was recorded")
        if derived.get(seq):
            problems.append(f"{derived[seq]} activation row(s) differ from the audit events they are derived from")
        recomputed = content_hash(dict(snap), by_snapshot.get(snap["id"], []), mine,
                                  hashing.events_digest(events.get(seq, [])), bound)
        if recomputed != snap["content_hash"]:
            problems.append("content hash does not match the stored rows")
        if snap["prev_hash"] != prev_chain:
            problems.append("link to the previous snapshot is broken")
        if hashing.chain(prev_chain, recomputed) != snap["chain_hash"]:
            problems.append("chain hash does not match")
        prev_chain = snap["chain_hash"]
        checks.append(SnapshotCheck(tenant, seq, snap["id"], not problems, problems))
    if checks and archived.problems():  # which snapshot brought an unreadable batch's events is not known
        checks[-1].problems += archived.problems()
        checks[-1].ok = False
    orphans = closers - {c.seq for c in checks}
    if orphans and checks:  # closed by a snapshot the history does not hold: found at the newest
        checks[-1].problems.append(f"{len(orphans)} batch(es) of closed fact versions name no snapshot of the tenant")
        checks[-1].ok = False
    return checks


class _ArchivedEvents:
    """The archived events of a tenant as verify reads rows of `event`, the text in place of zdata; what
    readers would misread is counted: a batch that does not read or whose count is not what it holds, and
    rows of an archived day (every reader takes a kind's archived days to precede its rows)."""

    def __init__(self, conn: Connection, tenant: str):
        self.conn, self.tenant = conn, tenant
        self.unreadable = self.miscounted = self.early = 0

    def __iter__(self):
        edges: dict[str, str] = {}
        for kind, day, count, data in _earc.batches(self.conn, self.tenant):
            edges[kind] = max(edges.get(kind, day), day)
            try:
                events = _earc.unpack(kind, day, data)
            except _earc.EventArchiveError:
                self.unreadable += 1
                continue
            self.miscounted += len(events) != count
            for e in events:
                yield kind, e.source_id, e.text, e.first_seen, e.correlation_id, e.occurred_at
        for kind, last in edges.items():
            self.early += _receipts.raw_rows(self.conn, "SELECT count(*) FROM event WHERE tenant_id = ? AND kind = ? "
                                                        "AND occurred_at < ?",
                                             (self.tenant, kind, _receipts.db_time(self.conn, _earc.after(last))))[0][0]

    def problems(self) -> list[str]:
        return [text.format(n) for n, text in (
            (self.unreadable, "{} batch(es) of archived events do not read as stored"),
            (self.miscounted, "{} batch(es) of archived events hold other than their count"),
            (self.early, "{} event row(s) of days the archive holds")) if n]


def _activations_differ(conn: Connection, tenant: str, slots: dict[str, list], joins: dict[str, Any],
                        decompress: Callable[[bytes], str]) -> dict[int, int]:
    """seq -> how many `activation` rows differ from what the audit events make of them (`slots`, and `joins`
    for `joined`), counted at the newest snapshot that brought one of the activation's events: a row the
    events do not make, or that they make otherwise, or one they make that is missing. Not part of any hash
    (the rows are derived), but the trend counts them and views read them."""
    newest = conn.execute(select(snapshot_table.c.seq).where(snapshot_table.c.tenant_id == tenant)
                          .order_by(snapshot_table.c.seq.desc()).limit(1)).scalar() or 0
    wrong: dict[int, int] = defaultdict(int)
    names = ("first_at", "last_at", "at", "asked", "approved", "denied", "state")
    text = conn.dialect.name == "sqlite"  # SQLite keeps the times as text, which the trend's SQL compares

    def expected(slot: list) -> tuple:
        row = activation_row(slot)
        return tuple(row[n].isoformat(" ", "microseconds") if text and isinstance(row[n], datetime) else row[n]
                     for n in names)

    def joined_as_stored(correlation: str, stored: bytes | None) -> bool:
        act = joins.get(correlation)
        try:
            return act is not None and stored is not None and decompress(bytes(stored)) == _joined.encode(act)
        except EventDataError:
            return False

    cursor = conn.connection.driver_connection.cursor()  # as stored: no per-row processing, exact text
    try:
        cursor.execute(_receipts._sql(conn, f"SELECT correlation_id, joined, {', '.join(names)} FROM activation "
                                            "WHERE tenant_id = ?"), (tenant,))
        for correlation, joined, *stored in cursor:
            slot = slots.pop(correlation, None)
            if slot is None or expected(slot) != tuple(stored) or not joined_as_stored(correlation, joined):
                wrong[newest if slot is None else slot[3]] += 1
    finally:
        cursor.close()
    for slot in slots.values():
        wrong[slot[3]] += 1
    return wrong


def _bad_items(conn: Connection, tenant: str) -> set[int]:
    """Numbers of elements whose stored text does not match their digest."""
    bad = set()
    for first, count, digests, data in conn.execute(
            select(item_pack_table.c.first_n, item_pack_table.c.count, item_pack_table.c.digests,
                   item_pack_table.c.data).where(item_pack_table.c.tenant_id == tenant)):
        try:
            texts = _packs.unpack(data)
        except (zlib.error, zstandard.ZstdError, ValueError, UnicodeDecodeError):
            texts = []
        digests = bytes(digests)
        for i in range(count):
            if i >= len(texts) or digests[16 * i:16 * i + 16] != _receipts.digest(texts[i]):
                bad.add(first + i)
    return bad


class _Listing:
    """One listing blob, checked once however many snapshots name it."""

    def __init__(self, conn: Connection, tenant: str, sha: str, known: set[str], bad: set[str],
                 bad_items: set[int]):
        self.entries: list[dict] = []
        self.missing = self.broken = 0
        self.layouts = False
        if sha not in known:
            self.missing = 1
            return
        if sha in bad:
            self.broken = 1
            return
        for entry in _receipts.listing(conn, tenant, sha):
            layout = entry.get("layout")
            self.entries.append({k: entry[k] for k in ("page", "parent", "request", "sha256")})
            if layout is None:
                self.missing += entry["sha256"] not in known
                self.broken += entry["sha256"] in bad
            else:
                self.layouts = True
                numbers = _receipts._numbers(layout["runs"])
                self.broken += any(n in bad_items for n in numbers)
