"""Recompute the hash chain from the stored rows and name the first snapshot that does not match."""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pimtrail.store import hashing
from pimtrail.store.ingest import content_hash
from pimtrail.store.schema import (blob_table, coverage_table, event_table, fact_table,
                                   receipt_table, snapshot_table)


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
    for kind, key, data, valid_from, valid_to in conn.execute(
            select(fact_table.c.kind, fact_table.c.key, fact_table.c.data, fact_table.c.valid_from,
                   fact_table.c.valid_to).where(fact_table.c.tenant_id == tenant)):
        value = hashing.element(kind, key, hashing.text_digest(data))
        added[valid_from] += value
        if valid_to is not None:
            removed[valid_to] += value

    events: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for kind, source_id, data, first_seen in conn.execute(
            select(event_table.c.kind, event_table.c.source_id, event_table.c.data,
                   event_table.c.first_seen).where(event_table.c.tenant_id == tenant)):
        events[first_seen].append((kind, source_id, hashing.text_digest(data)))

    bad_blobs = set()
    for sha, data in conn.execute(select(blob_table.c.sha256, blob_table.c.data)
                                  .where(blob_table.c.tenant_id == tenant)):
        try:
            if hashlib.sha256(zlib.decompress(data)).hexdigest() != sha:
                bad_blobs.add(sha)
        except zlib.error:
            bad_blobs.add(sha)
    known_blobs = set(conn.execute(select(blob_table.c.sha256)
                                   .where(blob_table.c.tenant_id == tenant)).scalars())

    by_snapshot: dict[int, list[dict]] = defaultdict(list)
    for row in conn.execute(select(coverage_table).where(coverage_table.c.tenant_id == tenant)).mappings():
        by_snapshot[row["snapshot_id"]].append(dict(row))
    receipts: dict[int, list[dict]] = defaultdict(list)
    for row in conn.execute(select(receipt_table).where(receipt_table.c.tenant_id == tenant)).mappings():
        receipts[row["snapshot_id"]].append(dict(row))

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
        mine = receipts.get(snap["id"], [])
        missing = {r["sha256"] for r in mine} - known_blobs
        broken = {r["sha256"] for r in mine} & bad_blobs
        if missing:
            problems.append(f"{len(missing)} raw receipt(s) missing")
        if broken:
            problems.append(f"{len(broken)} raw receipt(s) do not match their sha256")
        if len(events.get(seq, [])) != snap["event_count"]:
            problems.append("events differ from what was recorded")
        recomputed = content_hash(dict(snap), by_snapshot.get(snap["id"], []), mine,
                                  hashing.events_digest(events.get(seq, [])))
        if recomputed != snap["content_hash"]:
            problems.append("content hash does not match the stored rows")
        if snap["prev_hash"] != prev_chain:
            problems.append("link to the previous snapshot is broken")
        if hashing.chain(prev_chain, recomputed) != snap["chain_hash"]:
            problems.append("chain hash does not match")
        prev_chain = snap["chain_hash"]
        checks.append(SnapshotCheck(tenant, seq, snap["id"], not problems, problems))
    return checks
