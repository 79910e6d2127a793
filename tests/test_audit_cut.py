"""A tenant's first audit log cut by the worker that parses it, for the reader too (`collectors.auditcut`): the reader
leaves its pages to come (`CollectedSnapshot.pend`) and makes them of the worker's cut when it fits the file's bytes,
else cuts the file itself; either way the pages, their coverage and what is stored are a full read's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from first_ingest import roots, workers  # noqa: F401 -- fixtures

from pimtrail import collect
from pimtrail.collectors import auditcut, exportdir
from pimtrail.collectors import datasets as ds
from pimtrail.collectors.exportdir import read_export
from pimtrail.errors import InputError

AUDIT = ds.BY_NAME[ds.AUDIT_DATASET]


def _receipts(snap) -> list[tuple]:
    return [(p.dataset, p.index, p.parent, p.request, p.text, p.items) for p in snap.pages]


def test_the_reader_takes_the_workers_cut_and_makes_the_pages_a_full_read_makes(roots, tmp_path, workers,
                                                                                monkeypatch):
    read_here = []
    pages = exportdir._pages
    monkeypatch.setattr(exportdir, "_pages", lambda dataset, *args, **kw: (read_here.append(dataset.name),
                                                                           pages(dataset, *args, **kw))[1])
    (snap,) = collect.read_exports([roots[0]], db=str(tmp_path / "h.db"))
    try:
        assert snap.first_events.running and snap.deferred is not None and snap.remake.count == 0
        assert "users" in read_here and AUDIT.name not in read_here  # left to come, not read
        made = _receipts(snap)  # made when first asked for, of the worker's cut: the file is not cut here
        assert AUDIT.name not in read_here and any(page[0] == AUDIT.name for page in made)
        full = read_export(roots[0])
        assert made == _receipts(full) and snap.coverage == full.coverage
    finally:
        snap.first_events.cancel()


def _worker_cut(path: Path):
    """The cut the worker gives of the audit log's file (in this process: `audit_pages` reads as it does)."""
    given = []
    exportdir.audit_pages(path, given.append)
    return given[0]


@pytest.mark.parametrize("edit", ["none", "longer", "outside the bodies", "not ascii", "carriage return"])
def test_a_cut_is_taken_only_for_the_bytes_the_worker_cut(roots, tmp_path, edit):
    root = Path(shutil.copytree(roots[0], tmp_path / "export"))
    path = root / "directory_audits.json"
    cut = _worker_cut(path)
    data = path.read_bytes()
    assert data.startswith(b"[\n{")
    if edit == "longer":
        data += b"\n"
    elif edit == "outside the bodies":  # the same length, still JSON: the line break after "[" made a blank
        data = b"[ " + data[2:]
    elif edit == "not ascii":
        data = data.replace(b'"displayName":"', b'"displayName":"\xc3\xa9', 1)[:len(data)]
    elif edit == "carriage return":
        data = b"[\r" + data[2:]
    path.write_bytes(data)
    made = auditcut.pages(AUDIT, path, cut)
    if edit != "none":
        assert made is None
        return
    full = read_export(root)
    new, rows = made
    assert [(p.index, p.parent, p.request, p.text, p.items) for p in new] == \
        [(p.index, p.parent, p.request, p.text, p.items) for p in full.pages if p.dataset == AUDIT.name]
    assert rows == next(c.rows for c in full.coverage if c.dataset == AUDIT.name) > 100


@pytest.mark.parametrize("edit", ["byte order mark", "carriage returns", "not ascii"])
def test_the_worker_gives_no_cut_where_offsets_are_not_the_files_bytes(roots, tmp_path, edit):
    root = Path(shutil.copytree(roots[0], tmp_path / "export"))
    path = root / "directory_audits.json"
    data = path.read_bytes()
    if edit == "byte order mark":
        data = b"\xef\xbb\xbf" + data
    elif edit == "carriage returns":
        data = data.replace(b"\n", b"\r\n")
    else:
        data = data.replace(b'"displayName":"', '"displayName":"Zoë '.encode(), 3)
    path.write_bytes(data)
    assert _worker_cut(path) is None
    snap = read_export(root, defer=True, cut=lambda: None)  # the reader then cuts the file itself
    assert _receipts(snap) == _receipts(read_export(root)) and snap.deferred is not None


def test_pages_whose_making_fails_stay_to_come(roots, tmp_path):
    """A bad audit log found only when its pages are made: it raises as the full read does, each time the pages are
    asked for, and they are never given without it."""
    root = Path(shutil.copytree(roots[0], tmp_path / "export"))
    path = root / "directory_audits.json"
    path.write_bytes(path.read_bytes()[:-200])
    snap = read_export(root, defer=True, cut=lambda: None)  # read as without a cut: by the reader
    for _ in range(2):
        with pytest.raises(InputError) as raised:
            snap.pages  # noqa: B018
        assert "directory_audits.json" in str(raised.value)
    with pytest.raises(InputError):
        read_export(root)


def test_a_bad_audit_log_read_with_a_worker_fails_before_the_history_is_made(roots, tmp_path, workers):
    root = Path(shutil.copytree(roots[0], tmp_path / "export"))
    path = root / "directory_audits.json"
    path.write_bytes(path.read_bytes().replace(b'"activityDateTime":"', b'"activityDateTime":"not ', 1))
    db = tmp_path / "h.db"
    (snap,) = collect.read_exports([root], db=str(db))
    with pytest.raises(InputError, match="activityDateTime"):
        collect.check_before_creating(str(db), [snap])
    assert not db.exists()
