"""`HistoryStore`: the one API the rest of pimtrail uses to write and read the history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine

from pimtrail.errors import HistoryError
from pimtrail.model import CollectedSnapshot
from pimtrail.store import ingest as _ingest
from pimtrail.store import verify as _verify
from pimtrail.store.engine import byte_order, open_engine
from pimtrail.store.schema import (coverage_table, event_table, fact_table, receipt_list_table,
                                   snapshot_table)

ROLE_KINDS = ("role_assignment", "role_eligibility")


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    tenant_id: str
    seq: int
    collected_at: datetime
    ingested_at: datetime
    source: str
    source_ref: str
    tool_version: str
    status: str
    fact_count: int
    event_count: int
    content_hash: str
    prev_hash: str
    chain_hash: str

    @classmethod
    def from_row(cls, row: Any) -> "SnapshotInfo":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class HistoryStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, db: str | None, *, create: bool = False) -> "HistoryStore":
        return cls(open_engine(db, create=create))

    def _order(self, column):
        """ORDER BY a string column in code-point order on SQLite and PostgreSQL alike."""
        return byte_order(column, self.engine.dialect.name)

    def close(self) -> None:
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:  # leave one self-contained file behind
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.engine.dispose()

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def ingest(self, snap: CollectedSnapshot) -> SnapshotInfo:
        """Store one snapshot, whole or not at all."""
        with self.engine.begin() as conn:
            row = _ingest.ingest(conn, snap)
        return SnapshotInfo.from_row(row)

    # -- snapshots -----------------------------------------------------------------------
    def tenants(self) -> list[str]:
        with self.engine.connect() as conn:  # sorted here: DISTINCT and a collated ORDER BY do not mix
            return sorted(conn.execute(select(snapshot_table.c.tenant_id).distinct()).scalars())

    def tenant(self, requested: str | None) -> str:
        """The tenant a command works on: the one asked for, or the only one in the history."""
        known = self.tenants()
        if requested:
            if requested not in known:
                raise HistoryError(f"--tenant {requested}: not in this history (known: {', '.join(known) or 'none'})")
            return requested
        if len(known) == 1:
            return known[0]
        if not known:
            raise HistoryError("the history holds no snapshots yet (run `pimtrail collect`)")
        raise HistoryError(f"the history holds {len(known)} tenants; pass --tenant ({', '.join(known)})")

    def snapshots(self, tenant_id: str | None = None) -> list[SnapshotInfo]:
        query = select(snapshot_table).order_by(self._order(snapshot_table.c.tenant_id), snapshot_table.c.seq)
        if tenant_id:
            query = query.where(snapshot_table.c.tenant_id == tenant_id)
        with self.engine.connect() as conn:
            return [SnapshotInfo.from_row(r) for r in conn.execute(query).mappings()]

    def snapshot_as_of(self, tenant_id: str, when: datetime) -> SnapshotInfo | None:
        """The newest snapshot collected at or before `when` (naive UTC)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(snapshot_table).where(
                snapshot_table.c.tenant_id == tenant_id, snapshot_table.c.collected_at <= when)
                .order_by(snapshot_table.c.seq.desc()).limit(1)).mappings().first()
        return SnapshotInfo.from_row(row) if row else None

    def coverage(self, snapshot_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                select(coverage_table).where(coverage_table.c.snapshot_id == snapshot_id)
                .order_by(self._order(coverage_table.c.dataset))).mappings()]

    # -- facts and events ----------------------------------------------------------------
    @staticmethod
    def _valid_at(seq: Any):
        return and_(fact_table.c.valid_from <= seq,
                    or_(fact_table.c.valid_to.is_(None), fact_table.c.valid_to > seq))

    def facts(self, tenant_id: str, kind: str, seq: int) -> list[dict[str, Any]]:
        """The facts of one kind as they stood in snapshot `seq`."""
        with self.engine.connect() as conn:
            return [dict(json.loads(r.data), _key=r.key) for r in conn.execute(
                select(fact_table.c.key, fact_table.c.data).where(
                    fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind,
                    self._valid_at(seq)).order_by(self._order(fact_table.c.key)))]

    def fact_versions(self, tenant_id: str, kind: str, key: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [{"valid_from": r.valid_from, "valid_to": r.valid_to, "data": json.loads(r.data)}
                    for r in conn.execute(
                select(fact_table.c.valid_from, fact_table.c.valid_to, fact_table.c.data).where(
                    fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind,
                    fact_table.c.key == key).order_by(fact_table.c.valid_from))]

    def fact_history(self, tenant_id: str, kind: str, upto_seq: int) -> list[dict[str, Any]]:
        """Every version of one kind of fact that began by snapshot `upto_seq`, oldest first."""
        with self.engine.connect() as conn:
            return [{"valid_from": r.valid_from, "valid_to": r.valid_to, "data": json.loads(r.data)}
                    for r in conn.execute(select(fact_table.c.valid_from, fact_table.c.valid_to, fact_table.c.data)
                                          .where(fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind,
                                                 fact_table.c.valid_from <= upto_seq)
                                          .order_by(fact_table.c.valid_from, fact_table.c.id))]

    def holders_on(self, tenant_id: str, when: datetime, role_id: str | None = None) -> list[dict[str, Any]]:
        """Who held which role (active or eligible) on `when`, per the newest snapshot taken by
        then: one query joining the versioned facts to the snapshot in force."""
        seq_then = (select(snapshot_table.c.seq).where(
            snapshot_table.c.tenant_id == tenant_id, snapshot_table.c.collected_at <= when)
            .order_by(snapshot_table.c.seq.desc()).limit(1).scalar_subquery())
        query = select(fact_table.c.kind, fact_table.c.data).where(
            fact_table.c.tenant_id == tenant_id, fact_table.c.kind.in_(ROLE_KINDS),
            self._valid_at(seq_then))
        if role_id:
            query = query.where(fact_table.c.role_id == role_id)
        with self.engine.connect() as conn:
            rows = [json.loads(r.data) for r in conn.execute(query)]
        return sorted(rows, key=lambda r: (r.get("role_name") or "", r.get("principal_name") or "",
                                           r.get("state") or ""))

    def events(self, tenant_id: str, kind: str, start: datetime | None = None,
               end: datetime | None = None) -> list[dict[str, Any]]:
        query = select(event_table.c.source_id, event_table.c.occurred_at, event_table.c.data).where(
            event_table.c.tenant_id == tenant_id, event_table.c.kind == kind)
        if start is not None:
            query = query.where(event_table.c.occurred_at >= start)
        if end is not None:
            query = query.where(event_table.c.occurred_at < end)
        with self.engine.connect() as conn:
            return [dict(json.loads(r.data), _source_id=r.source_id) for r in
                    conn.execute(query.order_by(event_table.c.occurred_at, self._order(event_table.c.source_id)))]

    def receipt(self, tenant_id: str, sha256: str, snapshot_id: int | None = None) -> bytes:
        """A raw page's exact bytes by its sha256 (searching the given snapshot, else the newest
        snapshot holding it), put together again from its stored parts."""
        from pimtrail.store import receipts

        query = select(receipt_list_table.c.sha256).where(receipt_list_table.c.tenant_id == tenant_id)
        if snapshot_id is not None:
            query = query.where(receipt_list_table.c.snapshot_id == snapshot_id)
        with self.engine.connect() as conn:
            seen: set[str] = set()
            for listing_sha in conn.execute(query.order_by(receipt_list_table.c.snapshot_id.desc())).scalars():
                if listing_sha in seen:
                    continue
                seen.add(listing_sha)
                for entry in receipts.listing(conn, tenant_id, listing_sha):
                    if entry["sha256"] == sha256:
                        return receipts.rebuild(conn, tenant_id, entry)
        raise HistoryError(f"no raw receipt {sha256}")

    def receipts(self, tenant_id: str, snapshot_id: int) -> list[dict[str, Any]]:
        """The raw pages of one snapshot: dataset, page, parent, request, sha256 (no bodies)."""
        from pimtrail.store import receipts

        with self.engine.connect() as conn:
            return [dict({k: e[k] for k in ("page", "parent", "request", "sha256")}, dataset=name)
                    for name, entries in sorted(receipts.read_listings(conn, tenant_id, snapshot_id).items())
                    for e in entries]

    # -- control results ------------------------------------------------------------------
    def save_check_run(self, tenant_id: str, snapshot_id: int, profile: str, period: tuple[datetime, datetime],
                       settings_hash: str, results: list[dict[str, Any]]) -> int:
        from pimtrail.store.results import save_run

        return save_run(self.engine, tenant_id, snapshot_id, profile, period, settings_hash, results)

    def control_posture(self, tenant_id: str, profile: str) -> dict[int, dict[str, str]]:
        from pimtrail.store.results import latest_runs

        return latest_runs(self.engine, tenant_id, profile)

    def snapshot(self, tenant_id: str, selector: str | int | None) -> SnapshotInfo:
        """`latest`, a sequence number (`#3` or `3`) or nothing -> the snapshot."""
        snaps = self.snapshots(tenant_id)
        if not snaps:
            raise HistoryError(f"tenant {tenant_id} has no snapshots (run `pimtrail collect`)")
        if selector in (None, "", "latest"):
            return snaps[-1]
        text = str(selector).lstrip("#")
        if text.isdigit():
            for s in snaps:
                if s.seq == int(text):
                    return s
        raise HistoryError(f"--snapshot {selector}: no such snapshot (use latest or 1..{snaps[-1].seq})")

    # -- integrity -----------------------------------------------------------------------
    def verify(self, tenant_id: str | None = None) -> _verify.VerifyReport:
        tenants = [tenant_id] if tenant_id else self.tenants()
        with self.engine.connect() as conn:
            checks = [c for t in tenants for c in _verify.verify_tenant(conn, t)]
        return _verify.VerifyReport(checks)
