"""`HistoryStore`: the one API the rest of pimtrail uses to write and read the history."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from sqlalchemy import and_, false, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, Engine

from pimtrail.bulk import kept_heap, paused_gc
from pimtrail.errors import HistoryError
from pimtrail.model import CollectedSnapshot, Known
from pimtrail.store import archive as _archive
from pimtrail.store import ingest as _ingest
from pimtrail.store import openfacts as _openfacts
from pimtrail.store import receipts as _receipts
from pimtrail.store import verify as _verify
from pimtrail.store.appending import Recut
from pimtrail.store.engine import byte_order, ingest_cache, new_file_journal, open_engine, read_consistently
from pimtrail.store.event_reads import EventReads
from pimtrail.store.rowsfile import detached
from pimtrail.store.schema import PRINCIPAL_BRANCHES
from pimtrail.store.schema import coverage_table, fact_table, receipt_list_table, snapshot_table

ROLE_KINDS = ("role_assignment", "role_eligibility")


def decode_arrays(texts: list[str]) -> list[list[Any]]:
    """JSON arrays of a few values each (the SQL cut of some fields, `HistoryStore._cut`), decoded by one
    json.loads of them all joined, not one call each: a call costs more than decoding a short array. Texts
    that are not one array each (they would not join into as many arrays) are refused."""
    values = json.loads("[" + ",".join(texts) + "]") if texts else []
    if len(values) != len(texts) or not all(type(v) is list for v in values):
        raise HistoryError("the fields cut out of stored facts did not decode as one JSON array each")
    return values


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


class HistoryStore(EventReads):
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
                # main: the file. Unnamed, the temp database is checkpointed too, and once the file's journal mode
                # was switched (`new_file_journal`) SQLite 3.40 says "database table is locked" for it
                conn.exec_driver_sql("PRAGMA main.wal_checkpoint(TRUNCATE)")
        self.engine.dispose()

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def ingest(self, snap: CollectedSnapshot) -> SnapshotInfo:
        """Store one snapshot, whole or not at all."""
        try:
            return self._ingest_once(snap)
        except Recut:  # rolled back; its audit log is now read as a full parse reads it
            return self._ingest_once(snap)

    def _ingest_once(self, snap: CollectedSnapshot) -> SnapshotInfo:
        with paused_gc(), kept_heap(), self.engine.connect() as conn, ingest_cache(conn), new_file_journal(conn), \
                detached(conn):
            with conn.begin():  # committed before the cache shrinks back (and the worker's rows file is detached)
                _openfacts.check_sign_in_source(conn, snap)
                row = _ingest.ingest(conn, snap)
        return SnapshotInfo.from_row(row)

    def has_snapshots(self, tenant: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(snapshot_table.c.id).where(snapshot_table.c.tenant_id == tenant)
                                .limit(1)).first() is not None

    def known(self, tenant: str) -> Known | None:
        """What the tenant's newest snapshot holds, for reading the next export without parsing what it
        already held (`read_export(known=...)`); None when there is nothing to offer."""
        from pimtrail.store.known import read_known

        with self.engine.connect() as conn:
            return read_known(conn, tenant)

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

    def windows(self, tenant_id: str, dataset: str, seq: int) -> list[tuple[datetime, datetime]]:
        """The time windows a dataset was collected for (ok, with a window) by snapshots up to `seq`,
        oldest first: together they say which stretch of the audit log the history holds."""
        query = (select(coverage_table.c.window_from, coverage_table.c.window_to)
                 .join(snapshot_table, snapshot_table.c.id == coverage_table.c.snapshot_id)
                 .where(snapshot_table.c.tenant_id == tenant_id, snapshot_table.c.seq <= seq,
                        coverage_table.c.dataset == dataset, coverage_table.c.status == "ok",
                        coverage_table.c.window_from.is_not(None), coverage_table.c.window_to.is_not(None))
                 .order_by(coverage_table.c.window_from))
        with self.engine.connect() as conn:
            return [(r.window_from, r.window_to) for r in conn.execute(query)]

    # -- facts and events ----------------------------------------------------------------
    @staticmethod
    def _valid_at(seq: Any):
        return and_(fact_table.c.valid_from <= seq,
                    or_(fact_table.c.valid_to.is_(None), fact_table.c.valid_to > seq))

    def facts(self, tenant_id: str, kind: str, seq: int, principal_ids: Iterable[str] | None = None,
              contains: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The facts of one kind as they stood in snapshot `seq`, in key order. `principal_ids`: only the facts of
        those principals (the principal column, read through ix_fact_principal and ix_fact_key a chunk of ids at a
        time: `_by_principal`). `contains`: only facts whose stored JSON holds one of these texts, letter case
        ignored: a cheap filter in SQL that may let more through, so the caller checks the field it means."""
        principal_ids, contains = _listed(principal_ids), _listed(contains)  # each read twice: rows and archive
        if principal_ids is None and contains is None:
            # through the driver: SQLAlchemy's per-row processing of a kind's 20,000 facts costs a fifth of
            # decoding them
            order = 'key COLLATE "C"' if self.engine.dialect.name == "postgresql" else "key"
            with self._reading() as conn:
                rows = _receipts.raw_rows(conn, "SELECT key, data FROM fact WHERE tenant_id = ? AND kind = ? AND "
                                                f"valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) ORDER BY {order}",
                                          (tenant_id, kind, seq, seq))
                closed = [(v.key, v.data) for v in self._archived(conn, tenant_id, [kind], seq, seq)]
            return _decoded(sorted(rows + closed) if closed else rows)  # keys are unique at a snapshot
        query = select(fact_table.c.key, fact_table.c.data).where(
            fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind, self._valid_at(seq))
        with self._reading() as conn:
            rows = [(r.key, r.data) for r in self._filtered(query, principal_ids, contains, conn=conn)]
            rows += [(v.key, v.data) for v in self._archived(conn, tenant_id, [kind], seq, seq, principal_ids, contains)]
        return _decoded(sorted(rows, key=lambda r: r[0]))  # code-point order

    def principal_facts(self, tenant_id: str, kinds: Iterable[str], seq: int,
                        principal_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """kind -> the facts of those kinds about some principals as they stood in snapshot `seq`, each
        kind in key order (as `facts` gives them): one statement per chunk of ids, two branches (`_by_principal`)."""
        kinds = list(kinds)
        sqlite = self.engine.dialect.name == "sqlite"
        where = (f"WHERE tenant_id = ? AND kind IN ({', '.join('?' * len(kinds))}) "
                 "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) AND ")
        out: dict[str, list[Any]] = {kind: [] for kind in kinds}
        ids = sorted({p for p in principal_ids if p})
        with self._reading() as conn:  # through the driver, as `facts`
            for n in range(0, len(ids), self.CHUNK // 2):  # each branch names the chunk: under 999 parameters
                chunk = ids[n:n + self.CHUNK // 2]
                listed = f"({', '.join('?' * len(chunk))})"
                # the facts ix_fact_principal holds, and those keyed by their principal (`_by_principal`); SQLite,
                # without statistics, would walk ix_fact_open (every fact of the kind) once per chunk
                sql = " UNION ALL ".join(
                    f"SELECT kind, key, data FROM fact{f' INDEXED BY {index}' if sqlite else ''} "
                    f"{where}{column} IN {listed} AND {condition}" for index, column, condition in PRINCIPAL_BRANCHES)
                params = (tenant_id, *kinds, seq, seq, *chunk)
                for kind, key, data in _receipts.raw_rows(conn, sql, params + params):
                    out[kind].append((key, data))
            for v in self._archived(conn, tenant_id, kinds, seq, seq, ids):
                out[v.kind].append((v.key, v.data))
        return {kind: _decoded(sorted(rows)) for kind, rows in out.items()}  # keys are unique per kind

    CHUNK = 500  # ids per IN (...) list

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """One connection seeing one snapshot of the database: a reader of versions reads the rows of `fact`
        and then the archive, and an ingest committing in between would show it a changed fact twice."""
        with self.engine.connect() as conn:
            yield read_consistently(conn)

    def _filtered(self, query, principal_ids: Iterable[str] | None, contains: Iterable[str] | None,
                  column=None, conn: Connection | None = None) -> list[Any]:
        """Rows of a fact (or event) query narrowed to some principals (`column`) and/or, for facts, to data
        holding some texts; read through `conn` when given."""
        column = fact_table.c.principal_id if column is None else column
        if contains is not None:
            condition = self._contains(fact_table.c.data, contains)
            if condition is not None:
                query = query.where(condition)
        if conn is None:
            with self.engine.connect() as own:
                return self._filtered(query, principal_ids, None, column, own)
        if principal_ids is None:
            return conn.execute(query).all()
        ids = sorted({p for p in principal_ids if p})
        chunks = [ids[n:n + self.CHUNK] for n in range(0, len(ids), self.CHUNK)]
        if column is not fact_table.c.principal_id:
            return [r for chunk in chunks for r in conn.execute(query.where(column.in_(chunk))).all()]
        return [r for chunk in chunks for narrowed in _by_principal(query, chunk) for r in conn.execute(narrowed).all()]

    def _contains(self, column, texts: Iterable[str]):
        """`column` holds one of `texts`, letter case ignored (LIKE on SQLite, ILIKE elsewhere), or None
        when some text cannot be matched that way (the caller then reads everything and checks itself):
        JSON escapes quotes, backslashes and control characters, and SQLite folds only ASCII letters."""
        texts = list(texts)
        if not texts:
            return false()
        sqlite = self.engine.dialect.name == "sqlite"
        conditions = []
        for text in texts:
            if not _likeable(text, sqlite):
                return None
            pattern = "%" + text.replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(column.like(pattern, escape="\\") if sqlite else column.ilike(pattern, escape="\\"))
        return or_(*conditions)

    def _archived(self, conn, tenant_id: str, kinds: Iterable[str], upto: int | None, after: int | None,
                  principal_ids: Iterable[str] | None = None, contains: Iterable[str] | None = None,
                  key: str | None = None) -> list[_archive.Version]:
        """The closed versions kept in the archive (`pimtrail.store.archive`) that began by snapshot `upto` and
        were valid after snapshot `after`, narrowed as `_filtered` narrows rows: what each reader adds to the
        rows of `fact`."""
        found = _archive.versions(conn, tenant_id, kinds, upto=upto, after=after, key=key)
        if principal_ids is not None:
            ids = {p for p in principal_ids if p}  # as `_filtered`: no principal matches none
            found = (v for v in found if v.principal_id in ids)
        if contains is not None:
            texts = list(contains)
            # narrowed only where Python folds case as both LIKE and ILIKE do at least (ASCII), else let through
            if all(_likeable(t, self.engine.dialect.name == "sqlite") and t.isascii() for t in texts):
                lowered = [t.lower() for t in texts]
                found = (v for v in found if any(t in v.data.lower() for t in lowered))
        return list(found)

    def fact_versions(self, tenant_id: str, kind: str, key: str, after_seq: int | None = None) -> list[dict[str, Any]]:
        """Every version of one fact, oldest first. `after_seq`: only those still valid after that snapshot, so
        that the archive batches closed by it and before are not read."""
        query = select(fact_table.c.valid_from, fact_table.c.valid_to, fact_table.c.data).where(
            fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind, fact_table.c.key == key)
        if after_seq is not None:
            query = query.where(or_(fact_table.c.valid_to.is_(None), fact_table.c.valid_to > after_seq))
        with self._reading() as conn:
            rows = [(r.valid_from, r.valid_to, r.data) for r in conn.execute(query)]
            rows += [(v.valid_from, v.valid_to, v.data) for v in self._archived(conn, tenant_id, [kind], None, after_seq,
                                                                                 key=key)]
        return [{"valid_from": vf, "valid_to": vt, "data": json.loads(data)} for vf, vt, data in sorted(rows)]

    def fact_history(self, tenant_id: str, kind: str, upto_seq: int, principal_ids: Iterable[str] | None = None,
                     contains: Iterable[str] | None = None, after_seq: int | None = None) -> list[dict[str, Any]]:
        """Every version of one kind of fact that began by snapshot `upto_seq`, oldest first. `after_seq`:
        only versions still valid after that snapshot; `principal_ids`, `contains`: as for `facts`."""
        return [{"valid_from": vf, "valid_to": vt, "data": data}
                for vf, vt, data in self.version_rows(tenant_id, kind, upto_seq, principal_ids, contains, after_seq)]

    def version_rows(self, tenant_id: str, kind: str, upto_seq: int, principal_ids: Iterable[str] | None = None,
                     contains: Iterable[str] | None = None, after_seq: int | None = None,
                     fields: tuple[str, ...] | None = None) -> list[tuple[int, int | None, dict[str, Any]]]:
        """`fact_history` as (valid_from, valid_to, data) tuples: what a trend reads of every version of the
        holdings (~33,000 on a large tenant, ~83,000 after a year of daily snapshots), with no row object or dict
        made per version besides its data. `fields`: only these top-level fields of the data, cut out in SQL
        (`_cut`): a field the fact does not have reads as None, as a null one does."""
        principal_ids, contains = _listed(principal_ids), _listed(contains)
        data = fact_table.c.data if fields is None else self._cut(fields)
        query = select(fact_table.c.valid_from, fact_table.c.valid_to, data, fact_table.c.key).where(
            fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind, fact_table.c.valid_from <= upto_seq)
        if after_seq is not None:
            query = query.where(or_(fact_table.c.valid_to.is_(None), fact_table.c.valid_to > after_seq))
        with self._reading() as conn:
            rows = self._filtered(query, principal_ids, contains, conn=conn)
            closed = self._archived(conn, tenant_id, [kind], upto_seq, after_seq, principal_ids, contains)
        if fields is not None:
            rows = [(r[0], r[1], dict(zip(fields, values)), r[3]) for r, values in zip(rows, decode_arrays([r[2] for r in rows]))]
        loads = json.loads
        if fields is None:
            rows = [(r[0], r[1], loads(r[2]), r[3]) for r in rows]
            rows += [(v.valid_from, v.valid_to, loads(v.data), v.key) for v in closed]
        else:
            for v in closed:
                data = loads(v.data)
                rows.append((v.valid_from, v.valid_to, {name: data.get(name) for name in fields}, v.key))
        # sorted here (SQLite would sort the rows with their data in a temporary b-tree): by key in a snapshot,
        # which holds however the versions are stored (a changed fact's new version keeps its row's id)
        rows.sort(key=lambda r: (r[0], r[3]))
        return [(r[0], r[1], r[2]) for r in rows]

    def _cut(self, fields: tuple[str, ...]):
        """The values of some top-level fields of a fact's data, as the text of a JSON array (null for a field it
        does not have), typed as stored: the database decodes the JSON, and only the arrays are decoded here
        (`decode_arrays`; a role instance is ~500 bytes in ~15 fields, the sweep takes 7). On SQLite 3.40 the
        holdings history reads so in 13-16 % less time than with whole facts (docs/benchmarks.md).
        SQLite's json_extract gives an array for two paths or more (for one, its value as an SQL value)."""
        from sqlalchemy import JSON, Text, cast, func

        data = fact_table.c.data
        if self.engine.dialect.name == "sqlite":
            paths = [f'$."{name}"' for name in fields]
            return func.json_extract(data, *(paths if len(paths) > 1 else paths * 2))
        return cast(func.json_build_array(*(cast(data, JSON)[name] for name in fields)), Text)

    def fact_counts(self, tenant_id: str, kind: str, seq: int, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """(value of each field, ..., count) of the facts of one kind as they stood in snapshot `seq`, grouped
        by some top-level fields holding strings or null: counted in SQL, no fact decoded here (the trend counts
        a year's ~20,000 review decisions by instance, decision and apply result so)."""
        from sqlalchemy import JSON, cast, func

        data = fact_table.c.data
        if self.engine.dialect.name == "sqlite":
            values = [func.json_extract(data, f'$."{name}"') for name in fields]
        else:
            values = [cast(data, JSON)[name].as_string() for name in fields]
        inner = select(*(v.label(f"f{n}") for n, v in enumerate(values))).where(
            fact_table.c.tenant_id == tenant_id, fact_table.c.kind == kind, self._valid_at(seq)).subquery()
        columns = [inner.c[f"f{n}"] for n in range(len(fields))]
        with self._reading() as conn:
            counts = {tuple(r[:-1]): r[-1] for r in conn.execute(select(*columns, func.count()).group_by(*columns))}
            sqlite = self.engine.dialect.name == "sqlite"
            for v in self._archived(conn, tenant_id, [kind], seq, seq):
                data = json.loads(v.data)
                values = tuple(_as_sql_text(data.get(name), sqlite=sqlite) for name in fields)
                counts[values] = counts.get(values, 0) + 1
        return [(*values, count) for values, count in counts.items()]

    def holders_on(self, tenant_id: str, when: datetime, role_id: str | None = None) -> list[dict[str, Any]]:
        """Who held which role (active or eligible) on `when`, per the newest snapshot taken by
        then: one query joining the versioned facts to the snapshot in force."""
        with self._reading() as conn:
            seq_then = conn.execute(select(snapshot_table.c.seq).where(
                snapshot_table.c.tenant_id == tenant_id, snapshot_table.c.collected_at <= when)
                .order_by(snapshot_table.c.seq.desc()).limit(1)).scalar()
            if seq_then is None:
                return []
            query = select(fact_table.c.kind, fact_table.c.data).where(
                fact_table.c.tenant_id == tenant_id, fact_table.c.kind.in_(ROLE_KINDS),
                self._valid_at(seq_then))
            if role_id:
                query = query.where(fact_table.c.role_id == role_id)
            rows = [json.loads(r.data) for r in conn.execute(query)]
            rows += [json.loads(v.data) for v in self._archived(conn, tenant_id, ROLE_KINDS, seq_then, seq_then)
                     if not role_id or v.role_id == role_id]
        # the assignment's id last: the same role held twice (two scopes) comes out in one order, whatever the rows'
        return sorted(rows, key=lambda r: (r.get("role_name") or "", r.get("principal_name") or "",
                                           r.get("state") or "", str(r.get("id") or "")))

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
        with self._reading() as conn:  # rows and archives as of one moment, while collectors may write
            checks = [c for t in tenants for c in _verify.verify_tenant(conn, t)]
        return _verify.VerifyReport(checks)


def _by_principal(query, ids: list[str]) -> tuple:
    """`query` (of `fact`) narrowed to facts of the principals `ids`, as two queries: those ix_fact_principal holds
    (its condition named as written, so that the index is usable), and those keyed by their principal."""
    return tuple(query.where(fact_table.c[column].in_(ids), sql_text(condition))
                 for _, column, condition in PRINCIPAL_BRANCHES)


def _listed(items: Iterable[str] | None) -> list[str] | None:
    return None if items is None else list(items)


def _likeable(text: str, sqlite: bool) -> bool:
    """Whether a fact's stored JSON can be searched for `text` as it is (LIKE/ILIKE, `HistoryStore._contains`):
    JSON escapes quotes, backslashes and control characters, and SQLite folds only ASCII letters."""
    return bool(text) and not any(c in text for c in '"\\') and not any(
        ord(c) < 32 or (sqlite and ord(c) > 126) for c in text)


def _as_sql_text(value: Any, sqlite: bool) -> Any:
    """A top-level field of an archived fact as the SQL of `fact_counts` gives it for a row of `fact`: SQLite's
    json_extract gives strings and numbers as they are (true as 1), PostgreSQL's ->> gives their JSON text."""
    if isinstance(value, (dict, list)):  # both give an object's or array's JSON text, compact as stored
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if value is None or isinstance(value, str) or sqlite:
        return int(value) if sqlite and isinstance(value, bool) else value
    return json.dumps(value)


def _decoded(rows: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Facts from (key, stored JSON) rows: each its data with its key as `_key` (a key of the data named
    `_key` keeps its place, as `dict(data, _key=key)` would)."""
    loads, out = json.loads, []
    for key, data in rows:
        fact = loads(data)
        fact["_key"] = key
        out.append(fact)
    return out
