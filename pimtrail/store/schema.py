"""The history's tables (DESIGN.md §3). Every row carries the tenant id.

Timestamps are naive UTC (`pimtrail.timeutil`): the same on SQLite and PostgreSQL.

Tables are declared with SQLModel; reads and bulk writes use the SQLAlchemy Core `Table`
behind each model (`Snapshot.__table__`), never ORM objects one by one. The first migration
(`migrations/versions/0001_history.py`) creates exactly these tables; a test compares the two.
"""


from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

from pimtrail.store.columns import HASH, KEY, NAME, TENANT  # column widths


class Snapshot(SQLModel, table=True):
    """One collection run for one tenant. `seq` orders a tenant's snapshots (1, 2, ...)."""

    __tablename__ = "snapshot"
    __table_args__ = (UniqueConstraint("tenant_id", "seq", name="uq_snapshot_tenant_seq"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT, index=True)
    seq: int
    collected_at: datetime = Field(sa_type=DateTime)  # when the data was read (UTC); the snapshot's point in time
    ingested_at: datetime = Field(sa_type=DateTime)
    source: str = Field(max_length=16)  # graph / export / sample
    source_ref: str = Field(max_length=KEY)  # export directory or sample label
    tool_version: str = Field(max_length=32)
    status: str = Field(max_length=16)  # complete / partial
    fact_count: int
    event_count: int  # events first seen in this snapshot
    state_digest: str = Field(max_length=HASH)
    content_hash: str = Field(max_length=HASH)
    prev_hash: str = Field(max_length=HASH)
    chain_hash: str = Field(max_length=HASH)
    # every open fact normalised from one element names it (`fact.element_n`): written since 0006
    element_links: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class Coverage(SQLModel, table=True):
    """What one dataset of one snapshot holds, or why it holds nothing."""

    __tablename__ = "coverage"

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT)
    snapshot_id: int = Field(foreign_key="snapshot.id", index=True)
    dataset: str = Field(max_length=NAME)
    status: str = Field(max_length=16)  # ok / error / missing
    optional: bool
    rows: int
    pages: int
    requests: int
    query: str = Field(max_length=2000)
    http_status: Optional[int] = None
    error_code: Optional[str] = Field(default=None, max_length=NAME)
    error_message: Optional[str] = Field(default=None, max_length=2000)
    window_from: Optional[datetime] = Field(default=None, sa_type=DateTime)
    window_to: Optional[datetime] = Field(default=None, sa_type=DateTime)


class Blob(SQLModel, table=True):
    """A raw payload, content-addressed and zlib-compressed: unchanged payloads are stored once."""

    __tablename__ = "blob"

    tenant_id: str = Field(max_length=TENANT, primary_key=True)
    sha256: str = Field(max_length=HASH, primary_key=True)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ReceiptList(SQLModel, table=True):
    """Which raw pages answered one dataset of one snapshot: the sha256 of a listing blob that
    names each page's request, parent, sha256 and layout (`pimtrail.store.receipts`)."""

    __tablename__ = "receipt_list"

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT)
    snapshot_id: int = Field(foreign_key="snapshot.id", index=True)
    dataset: str = Field(max_length=NAME)
    sha256: str = Field(max_length=HASH)


class ItemPack(SQLModel, table=True):
    """Elements of raw pages (the items of `value`), numbered per tenant in the order first seen:
    the texts of elements first_n .. first_n + count - 1 compressed together (a zstd frame; zlib before
    round 10), and their digests (16 bytes each: BLAKE2b-128 of the text), by which an unchanged element
    is found again and stored once (`pimtrail.store.receipts`)."""

    __tablename__ = "item_pack"

    tenant_id: str = Field(max_length=TENANT, primary_key=True)
    first_n: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    count: int
    size: int  # characters before compression
    digests: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# the facts ix_fact_principal holds; a query through it names this condition as written (`HistoryStore.facts`).
# The others with a principal are keyed by it, found through ix_fact_key: both together are principal_id IN (...)
PRINCIPAL_NOT_KEY = "principal_id <> key"
PRINCIPAL_IS_KEY = "principal_id = key"
# the two ways to the facts of some principals, each (its index, the column the ids are looked up in, its condition)
PRINCIPAL_BRANCHES = (("ix_fact_principal", "principal_id", PRINCIPAL_NOT_KEY),
                      ("ix_fact_key", "key", PRINCIPAL_IS_KEY))


class Fact(SQLModel, table=True):
    """A versioned state fact: valid from snapshot seq `valid_from` up to (excluding) `valid_to`.

    An unchanged fact is one row however many snapshots see it; a change closes the old version
    and opens a new one; a fact that disappears is closed.
    """

    __tablename__ = "fact"
    __table_args__ = (
        Index("ix_fact_open", "tenant_id", "kind", "valid_to", "element_n"),  # element_n: migration 0010
        Index("ix_fact_key", "tenant_id", "kind", "key"),
        # only the facts whose principal is not their key (migration 0011): a principal's, its registration's and
        # its sign-ins' fact is found by its key (ix_fact_key), and these are 200,000 of a large tenant's 258,000
        Index("ix_fact_principal", "tenant_id", "principal_id", "kind", sqlite_where=text(PRINCIPAL_NOT_KEY),
              postgresql_where=text(PRINCIPAL_NOT_KEY)),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT)
    kind: str = Field(max_length=NAME)
    key: str = Field(max_length=KEY)
    principal_id: Optional[str] = Field(default=None, max_length=TENANT)
    role_id: Optional[str] = Field(default=None, max_length=TENANT)
    group_id: Optional[str] = Field(default=None, max_length=TENANT)
    digest: str = Field(max_length=HASH)
    data: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON, hashed as stored
    valid_from: int
    valid_to: Optional[int] = None
    # the item_pack number of the one raw element it was normalised from (migration 0006): an unchanged
    # element's facts are the open ones naming it, so a daily read need not parse it (`store.known`)
    element_n: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class FactArchive(SQLModel, table=True):
    """Fact versions closed by snapshot `valid_to`, one batch per kind: their rows' columns as records of a
    JSON array, zstd-compressed (`pimtrail.store.archive`, migration 0008). `fact` keeps the open versions."""

    __tablename__ = "fact_archive"

    tenant_id: str = Field(max_length=TENANT, primary_key=True)
    kind: str = Field(max_length=NAME, primary_key=True)
    valid_to: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    count: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Event(SQLModel, table=True):
    """An append-only event, de-duplicated by its source id across overlapping collections. Its data, the
    canonical JSON text that is hashed, is kept as a zstd frame (`pimtrail.store.eventdata`, migration 0005)."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "source_id", name="uq_event_source"),
        Index("ix_event_time", "tenant_id", "kind", "occurred_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT)
    kind: str = Field(max_length=NAME)
    source_id: str = Field(max_length=KEY)
    occurred_at: datetime = Field(sa_type=DateTime)
    principal_id: Optional[str] = Field(default=None, max_length=TENANT)
    role_id: Optional[str] = Field(default=None, max_length=TENANT)
    correlation_id: Optional[str] = Field(default=None, max_length=TENANT)
    zdata: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # canonical JSON, compressed
    first_seen: int  # seq of the snapshot that first brought it


class EventArchive(SQLModel, table=True):
    """The events of one kind and day past the tenant's audit window, moved out of `event` as one batch: their
    columns and stored texts, zstd-compressed (`pimtrail.store.event_archive`, migration 0009). Every archived
    day of a kind precedes its rows in `event`."""

    __tablename__ = "event_archive"

    tenant_id: str = Field(max_length=TENANT, primary_key=True)
    kind: str = Field(max_length=NAME, primary_key=True)
    day: str = Field(max_length=10, primary_key=True)  # YYYY-MM-DD of the events' occurred_at (UTC)
    count: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class EventDict(SQLModel, table=True):
    """A tenant's zstd dictionary for its events' data, by the id its frames name (kept for good)."""

    __tablename__ = "event_dict"

    tenant_id: str = Field(max_length=TENANT, primary_key=True)
    dict_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Activation(SQLModel, table=True):
    """A PIM activation as the trend counts it, derived from the `event` table (migration 0004): per
    correlation id, the latest request, decision, completion and denial among its stored audit events
    (`pimtrail.activations.fold`), updated at ingest as its events arrive. Not hashed: `verify` folds
    the events again and compares. `at` places it (its start, else its request), `asked` dates it (its
    request, else its start); `first_at`/`last_at` bound its events' times, so that a reader of a time
    range knows which activations have events on both sides of it. `joined` (migration 0007): the activation
    as `join_activations` makes it of all its events, what a view reads (`pimtrail.store.joined`)."""

    __tablename__ = "activation"
    __table_args__ = (Index("ix_activation_asked", "tenant_id", "asked", "at", "first_at", "last_at",
                            "approved", "denied"),)

    tenant_id: str = Field(max_length=TENANT, primary_key=True)
    correlation_id: str = Field(max_length=TENANT, primary_key=True)
    first_at: datetime = Field(sa_type=DateTime)
    last_at: datetime = Field(sa_type=DateTime)
    at: Optional[datetime] = Field(default=None, sa_type=DateTime)
    asked: Optional[datetime] = Field(default=None, sa_type=DateTime)
    approved: bool
    denied: bool
    state: str = Field(sa_column=Column(Text, nullable=False))  # the fold's latest events, as JSON
    # the activation as joined from all its events, what a view reads (pimtrail.store.joined, migration 0007)
    joined: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class CheckRun(SQLModel, table=True):
    """One evaluation of the controls on one snapshot with one profile and configuration."""

    __tablename__ = "check_run"
    __table_args__ = (Index("ix_check_run_snapshot", "tenant_id", "snapshot_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT)
    snapshot_id: int = Field(foreign_key="snapshot.id")
    profile: str = Field(max_length=64)
    evaluated_at: datetime = Field(sa_type=DateTime)
    period_from: datetime = Field(sa_type=DateTime)
    period_to: datetime = Field(sa_type=DateTime)
    tool_version: str = Field(max_length=32)
    settings_hash: str = Field(max_length=HASH)  # profile parameters + config that shaped the verdicts
    summary: str = Field(sa_column=Column(Text, nullable=False))


class ControlResult(SQLModel, table=True):
    __tablename__ = "control_result"
    __table_args__ = (Index("ix_control_result_run", "run_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=TENANT)
    run_id: int = Field(foreign_key="check_run.id")
    control_id: str = Field(max_length=32)
    status: str = Field(max_length=16)
    severity: str = Field(max_length=16)
    finding_count: int
    data: str = Field(sa_column=Column(Text, nullable=False))  # the result as JSON, findings included


snapshot_table = Snapshot.__table__
coverage_table = Coverage.__table__
blob_table = Blob.__table__
receipt_list_table = ReceiptList.__table__
item_pack_table = ItemPack.__table__
fact_table = Fact.__table__
fact_archive_table = FactArchive.__table__
event_table = Event.__table__
event_dict_table = EventDict.__table__
event_archive_table = EventArchive.__table__
activation_table = Activation.__table__
check_run_table = CheckRun.__table__
control_result_table = ControlResult.__table__
metadata = SQLModel.metadata


def fact_by_key(dialect: str) -> str:
    """`fact` for a statement that finds open facts by key (`... AND key IN (...) AND valid_to IS NULL`): SQLite,
    without statistics, would walk every open fact of the kind in `ix_fact_open` (tenant, kind, valid_to,
    element_n) instead of looking the keys up in `ix_fact_key`."""
    return "fact INDEXED BY ix_fact_key" if dialect == "sqlite" else "fact"
