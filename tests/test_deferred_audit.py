"""A tenant's first snapshot read while a worker reads its audit log (`pimtrail.collect._read_first`): this process
only cuts the audit log's pages into their elements (`collectors.unparsed.LineCut`), and takes the worker's events
when it cut the same pages' texts where this read did (`CollectedSnapshot.deferred`). Whatever goes wrong (the
worker gives nothing, cuts otherwise, is not taken on), the audit log is then read here, and what is stored is what
a full read stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from first_ingest import _same, plain, results, roots, workers  # noqa: F401 -- fixtures

from pimtrail import collect
from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore, appending
from pimtrail.store.history import HistoryStore as Store


def _audit(snap):
    return [p for p in snap.pages if p.dataset == "directory_audits"]


def test_a_deferred_audit_log_is_cut_as_its_full_parse_cuts_it(roots):
    full, deferred = read_export(roots[0]), read_export(roots[0], defer=True)
    assert deferred.deferred is not None and deferred.remake.count == 0
    assert [e.source_id for e in deferred.events] == [e.source_id for e in full.events[full.remake.count:]]
    # the receipts are the full read's: the same texts, elements where the parser ends them
    assert [(p.text, p.items) for p in deferred.pages] == [(p.text, p.items) for p in full.pages]
    assert deferred.coverage == full.coverage
    assert deferred.undefer() is True and deferred.deferred is None
    assert [(e.kind, e.source_id, e.data) for e in deferred.events] == [(e.kind, e.source_id, e.data)
                                                                       for e in full.events]
    assert deferred.remake.count == full.remake.count > 100


def _two_on_a_line(root: Path) -> Path:
    """The audit log rewritten with its first two elements on one line: still JSON, but not as the writer cuts it."""
    path = root / "directory_audits.json"
    lines = path.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith('{"id"') and lines[i + 1].startswith('{"id"'))
    lines[at:at + 2] = [lines[at] + lines[at + 1]]
    path.write_text("\n".join(lines))
    return root


def test_an_audit_log_cut_otherwise_is_cut_again_by_its_full_parse(roots, tmp_path):
    import shutil

    root = _two_on_a_line(Path(shutil.copytree(roots[0], tmp_path / "export")))
    full, deferred = read_export(root), read_export(root, defer=True)
    assert [p.items for p in _audit(deferred)] != [p.items for p in _audit(full)]
    assert deferred.undefer() is False  # its pages now cut as the full read cuts them
    assert [(p.text, p.items) for p in deferred.pages] == [(p.text, p.items) for p in full.pages]
    assert deferred.coverage == full.coverage


@pytest.mark.parametrize("cut", ["taken", "not fitting"])
def test_a_worker_that_cut_the_audit_log_otherwise_has_the_snapshot_written_again(roots, tmp_path, workers, results,
                                                                                 monkeypatch, cut):
    """Cut by the reader, the receipts were written from its cut when the worker's differed: rolled back and written
    again (`appending.Recut`), the same as with no worker at all. Taking the worker's cut (`collectors.auditcut`), the
    reader cuts as the full parse does, and the snapshot is written once."""
    import shutil

    from pimtrail.collectors import auditcut

    exports = [_two_on_a_line(Path(shutil.copytree(root, tmp_path / root.name))) for root in roots]
    plain_db = str(tmp_path / "plain.db")
    monkeypatch.setattr(appending, "FIRST_WORKER_MIN", 10 ** 9)
    with HistoryStore.open(plain_db, create=True) as store:  # no worker
        for root in exports:
            store.ingest(read_export(root))
    monkeypatch.setattr(appending, "FIRST_WORKER_MIN", 1)
    if cut == "not fitting":  # as if the file had changed after the worker read it: the reader cuts it itself
        monkeypatch.setattr(auditcut, "pages", lambda *args: None)
    results.clear()
    tries = []
    once = Store._ingest_once
    monkeypatch.setattr(Store, "_ingest_once", lambda self, snap: (tries.append(snap.deferred), once(self, snap))[1])
    db = str(tmp_path / "h.db")
    with HistoryStore.open(db, create=True) as store:
        for root in exports:
            store.ingest(collect.read_against(store, root))
        assert store.verify().ok
    if cut == "taken":  # the worker's rows taken; the second snapshot has none (not the tenant's first)
        assert results.begun == ["reading"] and results.raw[0][0] == appending.NORMALISED
        assert [type(r) for r in results] == [appending.Prepared, type(None)]
        assert [t is not None for t in tries] == [True, False]
    else:  # the worker begun with the reading cut otherwise: its rows not taken. Written again, the snapshot had a
        # worker begun with the ingest, sent the pages' texts, whose rows were taken.
        assert results.begun == ["reading", "ingest"] and results.raw[0][0] == appending.NORMALISED
        assert [type(r) for r in results] == [type(None), appending.Prepared, type(None)]
        assert [t is not None for t in tries] == [True, False, False]  # the first snapshot written twice
    _same(db, plain_db)


def test_a_deferred_snapshot_not_the_tenants_first_reads_its_audit_log_itself(roots, tmp_path, workers, results,
                                                                               plain):
    """Another reading of the tenant went first: its worker is not taken on, and its audit log is read here."""
    db = str(tmp_path / "h.db")
    (second,) = collect.read_exports([roots[1]], db=db)  # a new SQLite history: this would be its first snapshot
    assert second.deferred is not None and second.first_events.running
    with HistoryStore.open(db, create=True) as store:
        store.ingest(read_export(roots[0]))
        store.ingest(second)
        assert store.verify().ok
    assert second.deferred is None and second.remake.count > 100
    _same(db, plain)


@pytest.mark.parametrize("history", ["new", "existing"])
def test_a_bad_audit_entry_of_a_deferred_audit_log_is_named_and_leaves_the_history(export, tmp_path, workers,
                                                                                  results, cli, history):
    def change(data):
        body = data["directory_audits"][0] if isinstance(data["directory_audits"], list) else data["directory_audits"]
        body["value"][1]["activityDateTime"] = "yesterday"

    target = tmp_path / "h.db"
    if history == "existing":
        HistoryStore.open(str(target), create=True).close()
    before = target.read_bytes() if target.exists() else None
    result = cli("collect", "--source", export(change=change), "--db", target)
    assert result.exit_code == 2 and "directory_audits.json: value[1].activityDateTime" in result.output
    assert "not a date-time: 'yesterday'" in result.output
    assert results.begun == ["reading"]
    if history == "new":
        assert not target.exists()
    else:
        with HistoryStore.open(str(target)) as store:
            assert store.snapshots() == []
        assert before is not None


def _wrapped_element(root: Path) -> Path:
    """The audit log with one element on two lines, the first ending in `},` inside it: still JSON, but a line cut
    there is not an element, and the rest of the file then does not parse as the cut leaves it."""
    path = root / "directory_audits.json"
    lines = path.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith('{"id"') and line.endswith("},"))
    lines[at] = lines[at][:-2] + ',"x":{"y":1},\n"z":2},'
    path.write_text("\n".join(lines))
    return root


def test_an_audit_log_the_line_cut_cannot_read_is_read_in_full(roots, tmp_path):
    import shutil

    root = _wrapped_element(Path(shutil.copytree(roots[0], tmp_path / "export")))
    full, deferred = read_export(root), read_export(root, defer=True)
    assert deferred.deferred is None and deferred.remake.count == full.remake.count > 100  # parsed here
    assert all(p.items is not None for p in _audit(full))  # the file's own texts, cut where the parser ends them
    assert [(p.text, p.items) for p in deferred.pages] == [(p.text, p.items) for p in full.pages]
    assert [e.source_id for e in deferred.events] == [e.source_id for e in full.events]


def test_a_worker_begun_for_an_audit_log_the_export_reports_failed_is_not_taken_on(roots, tmp_path, workers, results):
    """The manifest names the audit log's file and an error for it: the reader skips the dataset (no `remake`), and
    the worker begun with the reading is stopped, whatever the snapshot's other events."""
    import json
    import shutil
    from datetime import datetime

    from pimtrail.model import EventRecord

    root = Path(shutil.copytree(roots[0], tmp_path / "export"))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["datasets"]["directory_audits"]["error"] = {"message": "Forbidden", "http_status": 403}
    (root / "manifest.json").write_text(json.dumps(manifest))
    db = str(tmp_path / "h.db")
    (snap,) = collect.read_exports([root], db=db)
    job = snap.first_events
    assert job.running and snap.remake is None and snap.deferred is None
    snap.events.append(EventRecord("audit", "another-event", datetime(2026, 6, 30, 12), {"id": "another-event"}))
    with HistoryStore.open(db, create=True) as store:
        store.ingest(snap)
        assert store.verify().ok and store.snapshots()[0].event_count == 1
    assert not job.running and results == [None]


def test_a_worker_that_could_not_start_leaves_the_audit_log_to_the_reader(roots, tmp_path, workers, monkeypatch):
    """Too little memory for a worker: none runs, and the reader parses the audit log itself."""
    from pimtrail.store import worker

    monkeypatch.setattr(worker, "room_for", lambda size: False)
    db = str(tmp_path / "h.db")
    (snap,) = collect.read_exports([roots[0]], db=db)
    assert not snap.first_events.running and snap.deferred is None and snap.remake.count > 100
    assert [(p.text, p.items) for p in snap.pages] == [(p.text, p.items) for p in read_export(roots[0]).pages]


@pytest.mark.parametrize("edit", ["as-written", "non-ascii", "crlf"])
def test_the_workers_reading_hashes_and_cuts_the_audit_pages_as_the_export_reader_does(roots, tmp_path, edit):
    """`audit_pages` hashes each body where it lies in the file's bytes (ASCII) or from its text's slice (otherwise,
    or universal newlines): the sha256 of the texts `read_export` keeps, cut where it cuts them."""
    import hashlib
    import shutil

    from pimtrail.collectors.exportdir import audit_pages
    from pimtrail.store.elements import digest
    from pimtrail.store.hashing import cuts_digest
    from pimtrail.store.receipts import cut_pages

    root = tmp_path / "export"
    shutil.copytree(roots[0], root)
    path = root / "directory_audits.json"
    data = path.read_bytes()
    if edit == "non-ascii":
        data = data.replace(b'"displayName":"', '"displayName":"Zoë '.encode(), 50)
    elif edit == "crlf":
        data = data.replace(b"\n", b"\r\n")
    path.write_bytes(data)
    pages = _audit(read_export(root))
    shas, cuts, events, pages_digests = audit_pages(path)
    digests = pages_digests()
    assert shas == [hashlib.sha256(p.text.encode()).hexdigest() for p in pages]
    assert cuts == cuts_digest([p.items for p in pages]) and all(p.items for p in pages)
    assert len(events) > 100
    # each element's digest as the receipts take it, for the ingest's cut (`FirstEvents.digests`)
    assert digests == [b"".join(digest(p.text[s:e]) for s, e in p.items) for p in pages]
    assert [c.digests for c in cut_pages(pages)[pages[0].dataset]] == \
        [c.digests for c in cut_pages(pages, given={pages[0].dataset: (shas, digests)})[pages[0].dataset]]
