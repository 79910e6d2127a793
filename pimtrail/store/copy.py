"""`pimtrail db copy`: move a whole history into another database (SQLite -> PostgreSQL, or back).

Every table, every tenant, row for row with the ids kept: coverage, receipts and check runs refer
to snapshot ids, control results to check-run ids, and reports name snapshots by id, so nothing is
renumbered; `verify` then recomputes the chain from the copied rows. The target must be empty: merging
two histories could interleave two chains of one tenant. The copy is one transaction on the
target (whole or nothing) and reads the source from one consistent snapshot of it, so a collector
writing meanwhile is either entirely in the copy or entirely not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine, make_url

from pimtrail.errors import HistoryError
from pimtrail.store.engine import open_engine, read_consistently, resolve_url, shown_url
from pimtrail.store.schema import metadata
from pimtrail.store.verify import VerifyReport

BATCH = 2000  # rows read and written per round trip: bounded memory for histories of any size


@dataclass
class CopyReport:
    source: str
    target: str
    counts: dict[str, int]  # table -> rows in the target after the copy
    verify: VerifyReport

    def summary(self) -> str:
        lines = [f"Copied {self.source} -> {self.target}"]
        lines += [f"  {table:<16} {rows:>10,} rows" for table, rows in self.counts.items()]
        if self.verify.ok:
            tenants = len({c.tenant_id for c in self.verify.checks})
            lines.append(f"verified on the target: {len(self.verify.checks)} snapshot(s) of {tenants} tenant(s); "
                         "hash chain intact")
        return "\n".join(lines)

    @property
    def problem(self) -> str | None:
        broken = self.verify.first_broken
        if broken is None:
            return None
        return (f"verify failed on the target: tenant {broken.tenant_id} snapshot #{broken.seq} "
                f"(id {broken.snapshot_id}): {'; '.join(broken.problems)}")


def _shown(engine: Engine) -> str:
    return shown_url(engine.url)


def _tables(engine: Engine) -> list[Table]:
    """The history's tables in foreign-key order: those the migrations created, all of them."""
    present = set(inspect(engine).get_table_names()) - {"alembic_version"}
    unknown = present - set(metadata.tables)
    if unknown:  # a newer pimtrail's table, or somebody else's: refuse rather than leave it behind
        raise HistoryError(f"{_shown(engine)}: tables this pimtrail does not know: {', '.join(sorted(unknown))}")
    return [t for t in metadata.sorted_tables if t.name in present]


def _non_empty(conn: Connection, tables: list[Table]) -> list[str]:
    return [t.name for t in tables if conn.execute(select(text("1")).select_from(t).limit(1)).first()]


def _copy_table(src: Connection, dst: Connection, table: Table) -> int:
    copied = 0
    order = list(table.primary_key.columns)
    result = src.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
    for part in result.mappings().partitions(BATCH):
        dst.execute(table.insert(), [dict(row) for row in part])
        copied += len(part)
    return copied


def _reset_sequences(dst: Connection, tables: list[Table]) -> None:
    """PostgreSQL hands out ids from a sequence that explicit ids do not advance: move each past
    the copied rows, or the next collection would collide with snapshot 1. (SQLite's next id is
    max + 1 by itself.)"""
    if dst.dialect.name != "postgresql":
        return
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].autoincrement in (True, "auto") and pk[0].type.python_type is int:
            dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                             f"COALESCE(MAX({pk[0].name}), 0) + 1, false) FROM {table.name}"))


def copy_history(source: str | None, target: str) -> CopyReport:
    """Copy the history at `source` (a --db value) into the empty database `target`, then verify
    the target. Raises HistoryError (exit 2) for a non-empty target or the same database twice."""
    from pimtrail.store.history import HistoryStore

    src = open_engine(source, create=False)
    dst = None
    try:
        if make_url(resolve_url(target)) == src.url:
            raise HistoryError(f"{_shown(src)}: source and target are the same database")
        dst = open_engine(target, create=True)
        tables = _tables(src)
        target_tables = _tables(dst)
        if [t.name for t in target_tables] != [t.name for t in tables]:
            raise HistoryError(f"{_shown(dst)}: its schema differs from the source's ({', '.join(t.name for t in tables)})")
        with dst.connect() as conn:
            filled = _non_empty(conn, target_tables)
        if filled:
            raise HistoryError(
                f"{_shown(dst)}: the target already holds data (in {', '.join(filled)}); `db copy` only writes "
                "into an empty database (create a new one, or point --to elsewhere)")
        with src.connect() as read, dst.begin() as write:
            read = read_consistently(read)
            copied = {table.name: _copy_table(read, write, table) for table in tables}
            _reset_sequences(write, tables)
        with dst.connect() as conn:  # counted again from the target: what is there, not what was sent
            counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables}
        if counts != copied:
            raise HistoryError(f"{_shown(dst)}: row counts after the copy {counts} differ from those copied {copied}")
        report = HistoryStore(dst).verify()
        return CopyReport(_shown(src), _shown(dst), counts, report)
    finally:
        src.dispose()
        if dst is not None:
            HistoryStore(dst).close()  # SQLite: folds the WAL into one self-contained file

