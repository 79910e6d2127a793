"""New events into the history: rows of `event` (or their archived day's batch, `event_archive`), inserted once
per kind and source id, and the `activation` rows their PIM activation events fold and join into.

Two steps, each a part that only computes and a part that writes: the events (which are new, their canonical
texts and digests, their zstd frames) and then the activations (folded, joined, encoded). A later snapshot's
steps read the history between them: which events it holds, the stored activations the new events continue,
their earlier events.

A tenant's first snapshot reads nothing: the history holds nothing of the tenant. On a large tenant its
180,000 events cost ~9 s of CPU to normalise, encode, compress, fold and join, so a worker process
(`pimtrail.store.worker`) computes both steps on the other core (`FirstEvents`) and the ingest only inserts what
it made (`append_events(first=...)`): the event rows as soon as the worker gives them, while it makes the
activations. The worker makes the audit events itself from the audit log's file
(`CollectedSnapshot.remake`): started when the export's reading begins (`pimtrail.collect`), it reads and
normalises them while the caller reads the rest, then waits for the snapshot's other events, which the ingest
sends when it begins; a snapshot read without one (from Graph) has one started by the ingest, sent its audit
pages' texts. The ingest takes what it made only when its pages' sha256 and its events' ids are the
snapshot's own; for a snapshot whose reader left the audit log to the worker (`CollectedSnapshot.deferred`: the
caller holds none of its events), when its pages' sha256 and where it cut their elements are. The worker runs the
same functions as the ingest would, and when it gives nothing (no worker here, a bad entry, killed) the ingest
computes the same itself, raising what there is to raise (a deferred audit log read here first: `_read_here`).
Two steps either can make, the audit log's element digests and the events' digest, are made by whichever comes to
them first (`rowsfile.claim`): which of the two processes ends last changes from run to run.
"""

from __future__ import annotations

import sqlite3
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Callable

from pimtrail.errors import HistoryError
from pimtrail.model import CollectedSnapshot, EventRecord
from pimtrail.store import hashing
from pimtrail.store import rowsfile as _rowsfile
from pimtrail.store.columns import EVENT, check_columns
from pimtrail.store.driver import indexes_after, insert, raw_many, time_param
from pimtrail.store.eventdata import Codec, store_dictionary
from pimtrail.store.newacts import activation_rows
from pimtrail.store.worker import Worker, give, keep, received

if TYPE_CHECKING:  # SQLAlchemy, the schema and the archive are imported where the history is read or written: the
    # worker making a first snapshot's rows (`prepare_audit`) starts without them (~0.4 s)
    from sqlalchemy.engine import Connection

    from pimtrail.store import event_archive as _earc

FIRST_WORKER_MIN = 20_000  # events of a first snapshot worth a worker (starting one costs ~0.2 s of the other core)
FIRST_WORKER_BYTES = 24 << 20  # an audit log file worth one as the export is read (~20,000 events of ~1.3 kB)
NORMALISED = "normalised"  # the worker's first part: every audit event it made normalised without an error
CUT = "cut"  # before it, begun with the reading: where the audit log's pages and elements lie (`collectors.auditcut`)
# steps the worker and the ingest can each take, whichever comes to it first (`rowsfile.claim`): the audit log's
# element digests, and the events' digest
DIGESTS, COUNTED = "digests", "counted"
EVENT_COLUMNS = ("tenant_id", "kind", "source_id", "occurred_at", "principal_id", "role_id", "correlation_id",
                 "zdata", "first_seen")
ACTIVATION_COLUMNS = ("first_at", "last_at", "at", "asked", "approved", "denied", "state", "joined")
FILE_COLUMNS = EVENT_COLUMNS[1:-1]  # in a rows file (`rowsfile`): the tenant and the seq are the ingest's own
ACTS_FILE_COLUMNS = ("correlation_id",) + ACTIVATION_COLUMNS  # in its activations' file: the tenant is the ingest's


@dataclass
class Prepared:
    """What the events of a snapshot add, computed (the writes of `append_events`)."""

    added: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, source id, digest)
    # or (how many, their `hashing.events_digest`), `added` empty: counted and digested by a worker (180,000 triples
    # not piped); the digest None when the worker wrote the triples beside the rows, for whichever of the two comes
    # to them first (`FirstEvents.counted`)
    digested: tuple[int, str] | None = None
    rows: list[tuple] = field(default_factory=list)  # `event` rows (EVENT_COLUMNS), zdata compressed
    rows_in: tuple[str, int] | None = None  # or (the file holding them, how many): `pimtrail.store.rowsfile`
    late: list[tuple[str, _earc.Archived]] = field(default_factory=list)  # events of archived days
    trained: tuple[int, bytes] | None = None  # the tenant's first dictionary, to store
    # (correlation, source, at, text, data): data is the event's dict the text encodes, which the join reads as
    # `decode_for_join(text)` would give it (canonical JSON decodes to what it encoded): ~1.5 s of a large first
    # snapshot's child not spent decoding 180,000 texts again
    audit: list[tuple[str, str, datetime, str, dict]] = field(default_factory=list)
    updated: list[tuple] = field(default_factory=list)  # stored activations: ACTIVATION_COLUMNS, tenant, correlation
    new: list[tuple] = field(default_factory=list)  # new activations: tenant, correlation, ACTIVATION_COLUMNS
    acts_in: tuple[str, int] | None = None  # or (the file holding them, how many), `new` empty: `rowsfile.activations`

    def counted(self) -> tuple[int, str]:
        """(how many events it adds, their `hashing.events_digest`)."""
        return self.digested if self.digested is not None else (len(self.added), hashing.events_digest(self.added))


def _new_events(tenant: str, seq: int, events: list[EventRecord], known: set[tuple[str, str]],
                edges: dict[str, datetime | None], sqlite: bool, codec_for: Callable[[list[str]], Codec]
                ) -> tuple[Prepared, Codec]:
    """The events not `known`: their rows (frames made by `codec_for(their texts)`), or archived days' entries."""
    out = Prepared()
    rows = []
    encode, added, audit = hashing.encode, out.added.append, out.audit.append
    for ev in events:
        kind, source, occurred = ev.kind, ev.source_id, ev.occurred_at
        ident = (kind, source)
        if ident in known:
            continue
        known.add(ident)
        data, principal, role, correlation = ev.columns()
        text, digest = encode(data, ev.textual)
        added((kind, source, digest))
        edge = edges.get(kind)
        if edge is not None and occurred < edge:  # an archived day's: joins its batch
            from pimtrail.store.event_archive import Archived

            out.late.append((kind, Archived(occurred, source, principal, role, correlation, seq, text)))
        else:  # EVENT_COLUMNS, the text where its frame goes
            rows.append((tenant, kind, source, time_param(sqlite, occurred), principal, role, correlation, text, seq))
        if kind == "audit" and correlation:
            audit((correlation, source, occurred, text, data))
    late = [(k, e.source_id, e.principal_id, e.role_id, e.correlation_id) for k, e in out.late]
    # the tenant's identifiers (a kind is a normaliser's own name)
    check_columns(EVENT, {name: [*map(itemgetter(at), rows), *map(itemgetter(at_late), late)]
                                for name, at, at_late in (("source_id", 2, 1), ("principal_id", 4, 2),
                                                          ("role_id", 5, 3), ("correlation_id", 6, 4))})
    # in time order (kind, occurred_at, source id; an audit log comes newest first): ix_event_time is then filled at
    # its end, its pages full
    rows.sort(key=itemgetter(1, 3, 2))
    codec = codec_for(list(map(itemgetter(7), rows)))
    compress = codec.compress
    out.rows = [(*row[:7], compress(row[7]), row[8]) for row in rows]
    return out, codec


def prepare_audit(remake: Callable, source: object, tenant: str, sqlite: bool, rows_file: str | None = None
                  ) -> tuple | None:
    """In a worker: the audit events `remake(source)` makes (`Remake.fn`), normalised while it waits for the rest
    of the snapshot's events (built: `_as_tuple`). Then, as `append_events` would make them, the events' rows,
    given at once (`give`) with the pages' sha256 and the events' `_ids`, which the ingest compares with its own,
    so that it inserts them while the worker goes on (with how many events they are and their digest,
    `Prepared.digested`); its value the activations (`activation_rows`' (updated, new), None) and the events'
    digest. None: the ingest did not send the rest. `rows_file`: the rows go there instead
    (`pimtrail.store.rowsfile`), the part naming the file and their count, and their (kind, source id, digest)
    triples beside them (`rowsfile.write_added`); and the new activations into the file beside it, the value naming
    that file and their count instead. The events' digest is then the value's, unless the ingest took it on first
    (`FirstEvents.counted`); through the pipe, the rows' part has it. The audit log's element digests (`remake`'s
    last item makes them) go in the first part unless the ingest took them on first (`FirstEvents.digests`). Begun
    with the reading, a part before that gives where the file's pages and elements lie as soon as it is read, for the
    reader (`FirstEvents.cut`)."""
    shas, cuts, made, digests = remake(source, _give_cut)
    for ev in made:
        ev.data  # noqa: B018 -- normalised now, before the rest comes
    ids = _ids(made)
    # each one normalised without an error (`FirstEvents.normalised`); the elements' digests for the receipts, unless
    # the ingest came to them first and hashes them itself (`FirstEvents.digests`)
    given = digests() if _rowsfile.claim(rows_file, DIGESTS, True) else None
    del digests  # and the file's bytes it holds (243 MB on a large tenant), for what comes next
    give((NORMALISED, shas, cuts, ids, given))
    rest = received()
    if rest is None:
        return None
    prepared, codec = _new_events(tenant, 1, made + [EventRecord(*r) for r in rest], set(), {}, sqlite, Codec.first)
    audit, prepared.trained = prepared.audit, codec.trained
    prepared.audit = []  # folded and joined here: not sent back
    rows, added, shared = prepared.rows, prepared.added, False
    if rows_file is not None:
        try:
            _rowsfile.write(rows_file, FILE_COLUMNS, (row[1:-1] for row in rows))
            prepared.rows, prepared.rows_in = [], (rows_file, len(rows))
            # their digests beside them, for whichever of the two digests them (`FirstEvents.counted`)
            _rowsfile.write_added(rows_file, added)
            shared = True
        except (sqlite3.Error, OSError):  # a full or small temporary directory: the rows go through the pipe
            pass
    prepared.digested, prepared.added = (len(added), None) if shared else prepared.counted(), []
    give((shas, ids, prepared))
    keep(made, rest, prepared, audit, rows, added)  # freed as the worker ends, not as it returns (~0.5 s waited)
    updated, new = activation_rows(None, tenant, 1, audit, codec, sqlite)
    keep(new)
    made_acts: tuple = (updated, new, None)
    if rows_file is not None:
        acts_file = _rowsfile.activations(rows_file)
        try:
            _rowsfile.write(acts_file, ACTS_FILE_COLUMNS, (row[1:] for row in new))
            made_acts = (updated, [], (acts_file, len(new)))
        except (sqlite3.Error, OSError):  # as for the rows: through the pipe
            pass
    # the events' digest, when the ingest did not take it on while it waited for the activations
    return *made_acts, hashing.events_digest(added) if shared and _rowsfile.claim(rows_file, COUNTED, True) else None


def _give_cut(cut: object) -> None:
    give((CUT, cut))


def is_cut(part: object) -> bool:
    """Whether a part the worker gave is its cut of the audit log (`_give_cut`)."""
    return isinstance(part, tuple) and len(part) == 2 and part[0] == CUT


def _ids(events: list[EventRecord]) -> str:
    return hashing.sha256_hex("\n".join(f"{e.kind}\t{e.source_id}" for e in events).encode())


def _as_tuple(ev: EventRecord) -> tuple:
    return ev.kind, ev.source_id, ev.occurred_at, ev.data, ev.principal_id, ev.role_id, ev.correlation_id


class FirstEvents:
    """A worker making a tenant's first snapshot's events ready (`prepare_audit`): `rows`, then `activations`, or None.
    Without `worker`: none (the ingest makes them itself)."""

    def __init__(self, worker: Worker | None = None, tenant: str = "", sqlite: bool = True,
                 rows_file: str | None = None):
        self._worker, self.tenant, self.sqlite = worker or Worker(None), tenant, sqlite
        if rows_file is not None and not self._worker.running:  # no worker to write it
            _rowsfile.remove(rows_file)
            rows_file = None
        self.rows_file = rows_file  # where the worker puts the rows (`rowsfile`)
        self._remove = weakref.finalize(self, _rowsfile.remove, rows_file)  # also when dropped without `cancel`
        self.snapshot: CollectedSnapshot | None = None  # the one whose other events it was sent (`finish`)
        self._vouched: tuple | None = None  # its first part (`normalised`), once taken
        self._after_cut: list = []  # the part `cut` took that was not a cut, for `_verdict`
        self._hashing = False  # whether the ingest took on the audit log's element digests (`digests`)

    @property
    def running(self) -> bool:
        """Whether it has a worker (none started: too little memory, no interpreter)."""
        return self._worker.running

    def normalised(self, snap: CollectedSnapshot, page_shas: list[str]) -> bool:
        """Whether the worker normalised without an error every audit event of `snap`'s audit pages, whose texts
        have `page_shas` (it says so before it waits for the rest of the snapshot's events): the events whose kinds
        and source ids are the snapshot's, or, its audit log deferred to the worker, those of the pages it cut where
        the snapshot's reader did (`hashing.cuts_digest`). Waits for it. `pimtrail.collect.check_before_creating`
        then need not."""
        verdict, remake = self._verdict(), snap.remake
        if not verdict or remake is None or verdict[1] != page_shas:
            return False
        if snap.deferred is None:
            return verdict[3] == _ids(snap.events[:remake.count])
        return verdict[2] == hashing.cuts_digest([p.items for p in snap.pages if p.dataset == remake.dataset])

    def cut(self) -> object:
        """Where the audit log's pages and their elements lie in its file as the worker read it (`audit_pages`' `cut`,
        `collectors.auditcut.of_reading`), for the reader that left them to come (`read_export(cut=...)`); None when
        it gives none. Waits for it: the worker gives it once it has read the file."""
        if self._vouched is not None or self._after_cut:
            return None
        value = self._worker.part()
        if is_cut(value):
            return value[1]  # type: ignore[index]
        self._after_cut.append(value)
        return None

    def _verdict(self) -> tuple:
        """The worker's first part after its cut, taken once; () when it gave none."""
        if self._vouched is None:
            value = self._after_cut.pop() if self._after_cut else self._worker.part()
            if is_cut(value):  # not taken (`cut`)
                value = self._worker.part()
            self._vouched = value if isinstance(value, tuple) and len(value) == 5 and value[0] == NORMALISED else ()
        return self._vouched

    def digests(self, snap: CollectedSnapshot) -> dict[str, tuple[list[str], list[bytes | None]]] | None:
        """The digests of the elements of `snap`'s audit pages as the worker found them (`audit_pages`), with the
        pages' sha256s, for `receipts.cut_pages` (each page's taken when its own sha256 is the one here): when the
        worker cut the pages where the snapshot's reader did; else None. Waits for them when the worker claimed
        them first (`rowsfile.claim`); None at once when this claims them: the ingest hashes the 180,000 audit
        elements of a large first snapshot itself (~0.4 s) where it would wait as long for the worker's."""
        if self._vouched is None and not self.running:  # no worker
            return None
        if self._vouched is None and (self._hashing or _rowsfile.claim(self.rows_file, DIGESTS, False)):
            self._hashing = True  # come to them before the worker: hashed here, while it goes on
            return None
        verdict, remake = self._verdict(), snap.remake
        if not verdict or remake is None:
            return None
        shas, cuts, _, digests = verdict[1:]
        if not (isinstance(shas, list) and isinstance(digests, list) and len(shas) == len(digests)) or \
                cuts != hashing.cuts_digest([p.items for p in snap.pages if p.dataset == remake.dataset]):
            return None
        return {remake.dataset: (shas, digests)}

    @classmethod
    def start(cls, remake: Callable, source: object, tenant: str, sqlite: bool, size: int, reserve: int = 0
              ) -> "FirstEvents":
        """Its worker started on `remake(source)`; `size`: bytes of the pages' texts (it needs ~7 times that: the
        large tenant's 243 MB audit log, 1.76 GB at its peak), `reserve`: what the caller will take meanwhile. Into
        SQLite, the worker hands the event rows and then the activations over in files (`pimtrail.store.rowsfile`)."""
        rows_file = _rowsfile.create() if sqlite else None
        try:
            worker = Worker(prepare_audit, remake, source, tenant, sqlite, rows_file, needs=8 * size + reserve)
        except BaseException:
            _rowsfile.remove(rows_file)
            raise
        return cls(worker, tenant, sqlite, rows_file)

    def finish(self, snap: CollectedSnapshot) -> "FirstEvents":
        """Send the worker the snapshot's other events; `rows` compares what it made with `snap`'s."""
        remake = snap.remake
        assert remake is not None
        self.snapshot = snap
        self._worker.send([_as_tuple(ev) for ev in snap.events[remake.count:]])
        return self

    def rows(self, page_shas: list[str], conn: Connection | None = None) -> Prepared | None:
        """The event rows the worker made (and the dictionary they need), when it made them of the pages whose
        texts have `page_shas` and of the snapshot's events; else None (and the worker is stopped). Waits for
        them. Rows the worker put in a file are taken only when `conn` (the ingest's, SQLite) attached it."""
        snap = self.snapshot
        if snap is None:  # not sent the rest (`finish`): it would wait for it
            self.cancel()
            return None
        value = self._worker.part() if self._verdict() else None  # after its first part, taken or not
        if isinstance(value, tuple) and len(value) == 3:
            shas, ids, prepared = value
            if isinstance(prepared, Prepared) and shas == page_shas and ids == self._verdict()[3] \
                    and self.normalised(snap, page_shas) and self._rows_whole(prepared, conn):
                return prepared
        self.cancel()
        return None

    def _rows_whole(self, prepared: Prepared, conn: Connection | None) -> bool:
        """Whether the rows are all there, as many as the worker counted and digested (`Prepared.digested`): given in
        the part, or in the file this caller made for them (a first snapshot archives none), the file attached to
        `conn` (`rowsfile.attach`) holding as many as the worker named, before any row is written: a file that does
        not is not taken."""
        counted = prepared.digested
        if prepared.added or not (isinstance(counted, tuple) and len(counted) == 2):
            return False
        if prepared.rows_in is None:
            return counted[0] == len(prepared.rows) + len(prepared.late)
        path, n = prepared.rows_in
        return counted[0] == n and not prepared.late and not prepared.rows \
            and self._attached(conn, path, self.rows_file, n, _rowsfile.SCHEMA)

    @staticmethod
    def _attached(conn: Connection | None, path: str, ours: str | None, n: int, schema: str) -> bool:
        """Whether the worker's file is the one at `ours` and `conn` (the ingest's, SQLite) attached it as `schema`
        holding its `n` rows (`rowsfile.attach`)."""
        return path == ours and conn is not None and conn.dialect.name == "sqlite" \
            and _rowsfile.attach(conn, path, n, schema)

    def counted(self, prepared: Prepared, conn: Connection) -> str | None:
        """The events' digest that the worker left for whichever of the two comes to it first (`Prepared.digested`
        without one): digested here from the rows file's `added` table (`rowsfile.added_digest`) when the ingest
        comes to it first, as it would otherwise wait for the activations; None when the worker took it on (its
        value gives it: `activations`), or the table does not hold as many as the worker counted."""
        count, digest = prepared.digested  # type: ignore[misc]
        if digest is not None or prepared.rows_in is None or not _rowsfile.claim(self.rows_file, COUNTED, False):
            return digest
        return _rowsfile.added_digest(conn, count)

    def activations(self, conn: Connection | None = None) -> tuple | None:
        """What the worker made after the rows `rows` took: the activations (updated, new, None, digest), or
        (updated, [], (their file, how many), digest) when it put the new ones in the file beside the rows' and
        `conn` (the ingest's, SQLite) attached it holding as many (`rowsfile.attach`); digest: the events' when it
        took that on (`counted`), else None. None when it gave none, or a file not taken. Waits for it."""
        value = self._worker.result()
        if not (isinstance(value, tuple) and len(value) == 4):
            return None
        acts_in = value[2]
        if acts_in is None:
            return value
        path, n = acts_in
        ours = _rowsfile.activations(self.rows_file) if self.rows_file is not None else None
        return value if not value[1] and self._attached(conn, path, ours, n, _rowsfile.ACTS_SCHEMA) else None

    def cancel(self) -> None:
        """Stop the worker and remove its scratch files (on a system that lets an open file go, even while the ingest's
        transaction still has it attached: `rowsfile.detached` removes it otherwise)."""
        self._worker.cancel()
        self._remove()  # its rows and activations files (`rowsfile.remove`)

    def __enter__(self) -> "FirstEvents":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def start_first(conn: Connection, snap: CollectedSnapshot, seq: int) -> FirstEvents:
    """The worker making the events of a tenant's first snapshot ready, when there are enough to be worth it (else
    none): the one started as the export was read (`snap.first_events`), else one started now on its audit pages'
    texts."""
    early, snap.first_events = snap.first_events, None
    sqlite = conn.dialect.name == "sqlite"
    if early is not None and (early.tenant != snap.tenant_id or early.sqlite != sqlite or seq != 1 or
                              snap.remake is None or snap.deferred is None and len(snap.events) < FIRST_WORKER_MIN):
        early.cancel()
        early = None
    if early is None:
        snap.undefer()  # an audit log deferred to the worker not taken on: read here, before anything is written
    remake = snap.remake
    if early is None and (seq != 1 or remake is None or len(snap.events) < FIRST_WORKER_MIN):
        return FirstEvents()
    try:
        if early is None:
            texts = [(p.parent, p.request, p.decoded()) for p in snap.pages if p.dataset == remake.dataset]
            early = FirstEvents.start(remake.fn, texts, snap.tenant_id, sqlite, sum(len(t) for _, _, t in texts))
        return early.finish(snap)
    except BaseException:
        if early is not None:
            early.cancel()
        raise


class Recut(Exception):
    """A deferred audit log read here (`_read_here`) cut into elements otherwise than its receipts, written already:
    `HistoryStore.ingest` rolls the snapshot back and writes it again, its pages now cut by the full parse."""


def _read_here(first: FirstEvents | None, events: list[EventRecord]) -> list[EventRecord]:
    """The snapshot's events once the worker's are not taken, its audit log read here if it was deferred."""
    snap = first.snapshot if first is not None else None
    if snap is None or snap.deferred is None:
        return events
    if not snap.undefer():
        raise Recut("the audit log's pages were cut otherwise than their full parse cuts them")
    return snap.events


def _write_events(conn: Connection, tenant: str, seq: int, prepared: Prepared) -> None:
    from pimtrail.store import event_archive as _earc
    from pimtrail.store.schema import event_table

    if prepared.trained is not None:
        store_dictionary(conn, tenant, prepared.trained)
    for kind in sorted({k for k, _ in prepared.late}):
        _earc.add(conn, tenant, kind, [e for k, e in prepared.late if k == kind])
    with indexes_after(conn, event_table):
        if prepared.rows_in is None:
            insert(conn, event_table, EVENT_COLUMNS, prepared.rows)
        else:
            _rowsfile.copy(conn, event_table.name, FILE_COLUMNS, {"tenant_id": tenant, "first_seen": seq},
                           prepared.rows_in[1])


def _write_activations(conn: Connection, tenant: str, prepared: Prepared) -> None:
    from pimtrail.store.schema import activation_table

    raw_many(conn, f"UPDATE activation SET {', '.join(n + ' = ?' for n in ACTIVATION_COLUMNS)} "
                   "WHERE tenant_id = ? AND correlation_id = ?", prepared.updated)
    with indexes_after(conn, activation_table):
        if prepared.acts_in is None:
            insert(conn, activation_table, ("tenant_id", "correlation_id") + ACTIVATION_COLUMNS, prepared.new)
        else:
            _rowsfile.copy(conn, activation_table.name, ACTS_FILE_COLUMNS, {"tenant_id": tenant},
                           prepared.acts_in[1], _rowsfile.ACTS_SCHEMA)


def append_events(conn: Connection, tenant: str, seq: int, events: list[EventRecord],
                  first: FirstEvents | None = None, page_shas: list[str] | None = None) -> tuple[int, str]:
    """Insert the events not stored before (by kind + source id) and their activations; return how many were
    added and their `hashing.events_digest`. `first`: a worker making a first snapshot's rows and activations
    (`start_first`), taken on when it made them of the pages whose texts have `page_shas` (`FirstEvents.rows`):
    its rows go in while it makes the activations."""
    prepared = first.rows(page_shas or [], conn) if first is not None else None
    if prepared is not None:
        _write_events(conn, tenant, seq, prepared)
        added = prepared.digested[0]  # type: ignore[index]  # counted by the worker (`_rows_whole`)
        digest = first.counted(prepared, conn)  # type: ignore[union-attr]  # or digested by it, given next
        made = first.activations(conn)  # type: ignore[union-attr]
        if made is None or digest is None and made[3] is None:
            # it gave the rows only, or neither gave their digest: the rest made here, as the worker makes it
            events = _read_here(first, events)
            codec, sqlite = Codec.load(conn, tenant), conn.dialect.name == "sqlite"  # its dictionary, stored
            again, _ = _new_events(tenant, seq, events, set(), {}, sqlite, lambda texts: codec)
            count, digested = again.counted() if digest is None else (added, digest)
            if count != added:  # not the events whose rows it wrote: nothing of them is kept
                raise HistoryError("the first snapshot's events were made otherwise than by its worker")
            made = (*activation_rows(None, tenant, seq, again.audit, codec, sqlite), None, digested)
        prepared.updated, prepared.new, prepared.acts_in = made[:3]
        _write_activations(conn, tenant, prepared)
        return added, digest if digest is not None else made[3]
    events = _read_here(first, events)
    if not events:
        return 0, hashing.events_digest([])
    from pimtrail.store.event_reads import stored_ids

    known, edges = stored_ids(conn, tenant, events)
    sqlite = conn.dialect.name == "sqlite"
    prepared, codec = _new_events(tenant, seq, events, known, edges, sqlite,
                                  lambda texts: Codec.for_writing(conn, tenant, texts))
    _write_events(conn, tenant, seq, prepared)  # before the joins: an activation joined again reads its events back
    prepared.updated, prepared.new = activation_rows(conn, tenant, seq, prepared.audit, codec, sqlite)
    _write_activations(conn, tenant, prepared)
    return prepared.counted()
