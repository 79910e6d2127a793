"""Raw receipts per element: every page comes back byte for byte, unchanged elements are stored once."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from pimtrail.collectors.exportdir import read_export
from pimtrail.model import Page
from pimtrail.store import HistoryStore, blobs
from pimtrail.store.packs import split_digests
from pimtrail.store.receipts import _numbers, _rle_numbers, restore, strip
from pimtrail.synthetic import generate


@pytest.mark.parametrize("text, keys", [
    ('{"id":"1","lastUpdatedDateTime":"2026-07-01T00:00:00Z","x":1}', ("lastUpdatedDateTime",)),
    ('{"id":"1","x":1}', ("lastUpdatedDateTime",)),  # key absent
    # the pattern inside a string value first: cut and put back at the same place
    ('{"name":"a\\"lastUpdatedDateTime\\":\\"b","lastUpdatedDateTime":"2026-07-01T00:00:00Z"}',
     ("lastUpdatedDateTime",)),
    ('{"a":{"b":[1,2,{"c":"}"}]},"z":null}', ("a", "z")),  # nested values, two keys
    ('{"a": "spaced"}', ("a",)),  # not Graph's compact form: left whole
    ('{"a":"\\u00e9\\n","b":"é"}', ("a", "b")),
])
def test_volatile_values_are_cut_and_put_back_exactly(text, keys):
    stripped, values = strip(text, keys)
    assert restore(stripped, keys, values) == text
    assert len(stripped) <= len(text)


def _pages(path: str) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        stored = dict(conn.execute("SELECT sha256, data FROM blob"))
        named = [sha for (sha,) in conn.execute("SELECT sha256 FROM receipt_list")]
    listings = [json.loads(blobs.text_of(stored[sha], stored.get)) for sha in named]
    return [(e["sha256"], e["layout"] is not None) for listing in listings for e in listing["pages"]]


def _users_listings(tmp_path, days: int) -> tuple[str, dict[str, bytes], list[str]]:
    roots = generate(tmp_path / "exports", "small", days=days, churn=0.02)
    db = str(tmp_path / "h.db")
    with HistoryStore.open(db, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        assert store.verify().ok
    with sqlite3.connect(db) as conn:
        stored = dict(conn.execute("SELECT sha256, data FROM blob"))
        users = [sha for (sha,) in conn.execute("SELECT sha256 FROM receipt_list WHERE dataset = 'users' ORDER BY id")]
    assert len(set(users)) == days  # a new listing each day
    return db, stored, users


def test_listings_are_stored_as_deltas_against_the_previous_days(tmp_path):
    """A dataset's listing changes every day at churn: it is stored as a zstd delta against the previous day's
    (`pimtrail.store.blobs`), reads back exactly, and takes less than the listing stored whole."""
    _, stored, users = _users_listings(tmp_path, 4)
    assert [blobs.base_of(stored[sha]) for sha in users] == [None, *users[:3]]
    assert [blobs.depth(stored[sha]) for sha in users] == [0, 1, 2, 3]
    texts = [blobs.text_of(stored[sha], stored.get) for sha in users]
    assert [hashlib.sha256(t).hexdigest() for t in texts] == users
    assert sum(len(stored[sha]) for sha in users[1:]) < sum(len(blobs.whole(t)) for t in texts[1:])


def test_a_chain_of_deltas_is_cut_at_its_greatest_depth(tmp_path, monkeypatch):
    monkeypatch.setattr(blobs, "MAX_DEPTH", 2)
    _, stored, users = _users_listings(tmp_path, 5)
    assert [blobs.depth(stored[sha]) for sha in users] == [0, 1, 2, 0, 1]  # day 4 stored whole again


@pytest.mark.parametrize("change", ["base", "depth"])
def test_a_listing_chain_changed_is_found_by_verify(tmp_path, cli, change):
    db, stored, users = _users_listings(tmp_path, 3)
    with sqlite3.connect(db) as conn:
        if change == "base":  # the first day's listing rewritten: the deltas made against it no longer give theirs
            text = blobs.text_of(stored[users[0]], stored.get).replace(b'"page":0', b'"page":9')
            conn.execute("UPDATE blob SET data = ? WHERE sha256 = ?", (blobs.whole(text), users[0]))
        else:  # a delta made to claim another depth
            data = bytearray(stored[users[2]])
            data[len(blobs.MAGIC)] = 5
            conn.execute("UPDATE blob SET data = ? WHERE sha256 = ?", (bytes(data), users[2]))
    result = cli("verify", "--db", db)
    assert result.exit_code == 1
    assert ("snapshot #1 " if change == "base" else "snapshot #3 ") in result.output, result.output


@pytest.mark.parametrize("numbers", [[], [7], [1, 2, 3], [5, 6, 9, 10, 11, 4, 4, 5], [3, 2, 1], list(range(100, 2000))])
def test_element_numbers_are_run_length_encoded_and_expanded_exactly(numbers):
    runs = _rle_numbers(numbers)
    assert _numbers(runs) == numbers
    assert all(count > 0 for _, count in runs)
    assert all(a + n != b for (a, n), (b, _) in zip(runs, runs[1:]))  # each run as long as it goes


def test_a_packs_digests_column_is_split_into_its_digests():
    digests = [hashlib.blake2b(str(n).encode(), digest_size=16).digest() for n in range(1000)]
    assert split_digests(b"".join(digests)) == digests
    assert split_digests(memoryview(b"".join(digests[:3]))) == digests[:3]  # as the PostgreSQL driver gives it
    assert split_digests(b"") == []
    assert split_digests(b"".join(digests[:2]) + b"short") == digests[:2] + [b"short"]  # not as written: kept


def test_every_page_of_the_sample_quarter_comes_back_byte_for_byte(sample_history):
    pages = _pages(sample_history)
    assert sum(cut for _, cut in pages) > len(pages) / 2  # most pages are stored as elements
    with HistoryStore.open(sample_history) as store:
        tenant = store.tenant(None)
        for sha, _ in set(pages):
            assert hashlib.sha256(store.receipt(tenant, sha)).hexdigest() == sha


def test_synthetic_days_store_unchanged_elements_once_and_rebuild_exactly(tmp_path):
    roots = generate(tmp_path / "exports", "small", days=3, churn=0.02)
    db = str(tmp_path / "h.db")
    counts = []
    with HistoryStore.open(db, create=True) as store:
        for root in roots:
            snap = read_export(root)
            info = store.ingest(snap)
            with sqlite3.connect(db) as conn:
                counts.append(conn.execute("SELECT coalesce(sum(count), 0) FROM item_pack").fetchone()[0])
            for page in snap.pages:  # what was read is what comes back
                assert store.receipt(snap.tenant_id, hashlib.sha256(page.payload).hexdigest(), info.id) == page.payload
        assert store.verify().ok
    elements = sum(len(p.items or ()) for p in snap.pages)
    # the first snapshot stores its elements; each further day only what changed (2 % churn, new audit entries)
    assert counts[0] >= 0.9 * elements
    assert 0 < counts[1] - counts[0] < 0.2 * counts[0]
    assert 0 < counts[2] - counts[1] < 0.2 * counts[0]


def test_a_report_refresh_time_does_not_make_every_row_new(tmp_path, db):
    body = ('{"@odata.context":"ctx","value":[' + ",".join(
        f'{{"id":"u{i}","isMfaRegistered":true,"lastUpdatedDateTime":"2026-07-0{{day}}T05:00:00Z"}}'
        for i in range(50)) + "]}")
    with HistoryStore.open(db, create=True) as store:
        from datetime import datetime

        from pimtrail.model import CollectedSnapshot

        for day in (1, 2):
            text = body.replace("{day}", str(day))
            start, spans = text.index("[") + 1, []
            # element offsets the way the reader finds them
            i = start
            while text[i] != "]":
                end = text.index("}", i) + 1
                spans.append((i, end))
                i = end + 1 if text[end] == "," else end
            page = Page("registration_details", 0, "", "/beta/x", text, tuple(spans), ("lastUpdatedDateTime",))
            snap = CollectedSnapshot("t1", datetime(2026, 7, day, 6), "export", "test", pages=[page])
            info = store.ingest(snap)
            assert store.receipt("t1", hashlib.sha256(text.encode()).hexdigest(), info.id) == text.encode()
        assert store.verify().ok
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT sum(count) FROM item_pack").fetchone()[0] == 50


def test_facts_of_unchanged_elements_are_not_encoded_again_and_the_state_is_the_same(tmp_path, monkeypatch):
    """Users and registrations whose raw element the previous snapshot held keep their open fact
    versions without being encoded again; the history is the same as when every fact is encoded
    (which happens when the previous snapshot was written by another pimtrail version)."""
    from pimtrail.store import hashing
    from pimtrail.store import ingest as ingest_module

    roots = generate(tmp_path / "exports", "small", days=3, churn=0.05)
    snaps = [read_export(root) for root in roots]
    encoded = []
    real = hashing.encode
    monkeypatch.setattr(hashing, "encode", lambda data, textual=False: encoded.append(1) or real(data, textual))

    def history(name: str, other_version: bool) -> list[tuple]:
        out = []
        with HistoryStore.open(str(tmp_path / name), create=True) as store:
            for n, snap in enumerate(snaps):
                if other_version and n:
                    monkeypatch.setattr(ingest_module, "__version__", f"other-{n}")
                encoded.clear()
                info = store.ingest(snap)
                out.append((info.fact_count, store.snapshots()[-1].event_count, len(encoded),
                            _state(store, info.id)))
            assert store.verify().ok
        monkeypatch.undo()
        monkeypatch.setattr(hashing, "encode", lambda data, textual=False: encoded.append(1) or real(data, textual))
        return out

    skipping = history("skip.db", other_version=False)
    full = history("full.db", other_version=True)
    assert [s[3] for s in skipping] == [f[3] for f in full]  # same state digest, snapshot by snapshot
    assert [s[0] for s in skipping] == [f[0] for f in full]
    facts = skipping[1][0]
    assert full[1][2] >= facts  # every fact (and new event) encoded
    assert skipping[1][2] < 0.5 * facts  # per-user facts of unchanged users were not


def _state(store, snapshot_id):
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT state_digest FROM snapshot WHERE id = ?", (snapshot_id,)).scalar()


def test_a_fact_is_rebuilt_when_a_dataset_it_depends_on_changes(tmp_path):
    """Assignment facts carry the role's name from role_definitions: renaming the role changes them
    although the assignment elements themselves are unchanged (FactRecord.depends)."""
    import exports

    def snapshot(when: str, exchange_name: str):
        data = exports.baseline(when)
        # a file holding a list of pages: its elements are cut apart (a lone body is kept whole)
        data["role_assignment_instances"] = [data["role_assignment_instances"]]
        for role in data["role_definitions"]["value"]:
            if role["id"] == exports.EXCHANGE:
                role["displayName"] = exchange_name
        return read_export(exports.write(tmp_path / when[:10], data))

    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        for when, name in (("2026-07-01T06:00:00Z", "Exchange Administrator"),
                           ("2026-07-02T06:00:00Z", "Exchange Administrator"),
                           ("2026-07-03T06:00:00Z", "Exchange Admin (renamed)")):
            info = store.ingest(snapshot(when, name))
            names = {f["role_name"] for f in store.facts(exports.TENANT, "role_assignment", info.seq)
                     if f["role_id"] == exports.EXCHANGE}
            assert names == {name}
        assert store.verify().ok


def test_times_are_written_as_sqlalchemy_writes_them():
    """`db_time` writes a naive time as SQLAlchemy's DateTime stores it on SQLite (compared as text there)."""
    import random
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    from pimtrail.store.receipts import db_time

    conn = SimpleNamespace(dialect=SimpleNamespace(name="sqlite"))
    process = DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    rng = random.Random(5)
    times = [datetime(2026, 7, 1), datetime(2026, 7, 1, 6, 0, 0, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]
    times += [datetime(1000, 1, 1) + timedelta(microseconds=rng.randrange(280 * 10**15)) for _ in range(2000)]
    assert [db_time(conn, t) for t in times] == [process(t) for t in times]


@pytest.mark.parametrize("edit", ["as-written", "non-ascii", "crlf", "deferred", "daily"])
def test_a_pages_bytes_give_the_receipts_its_text_gives(tmp_path, edit):
    """A page read from an ASCII file carries its bytes, a view of the file's (`Page.data`): they are its text's
    UTF-8, and what the receipts make of them (the page's sha256, its elements' digests and layout, the packs) is
    what they make of its text. A file that is not ASCII, or whose CRLF line ends are read as universal newlines,
    gives its pages no bytes. Registration details cut a volatile key out of each element: from the text. So too
    for an audit log cut into lines for a worker (`defer`), and for a daily read whose unchanged elements are
    recognised without being parsed (`Page.skipped`)."""
    import dataclasses

    from pimtrail.collect import read_against
    from pimtrail.store.receipts import cut_pages, new_packs

    roots = generate(tmp_path / "exports", "small", days=2 if edit == "daily" else 1)
    root = roots[-1]
    ascii_files = set()
    for path in root.glob("*.json"):
        data = path.read_bytes()
        if edit == "non-ascii":
            data = data.replace(b'"displayName":"', '"displayName":"Zoë '.encode())
        elif edit == "crlf":
            data = data.replace(b"\n", b"\r\n")
        path.write_bytes(data)
        if data.isascii() and b"\r" not in data:
            ascii_files.add(path.name)
    files = {name: entry["file"] for name, entry in json.loads((root / "manifest.json").read_text())["datasets"].items()}
    if edit == "daily":
        with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
            store.ingest(read_export(roots[0]))
            pages = read_against(store, root).pages
        assert sum(len(p.skipped) for p in pages if p.data is not None) > 100
    else:
        pages = read_export(root, defer=edit == "deferred").pages
    with_bytes = [p for p in pages if p.data is not None]
    # a file holding one body, not pages, keeps it whole and read by the stdlib: its text only
    assert [p.dataset for p in with_bytes] == [p.dataset for p in pages
                                               if p.items is not None and files[p.dataset] in ascii_files]
    assert len(with_bytes) > 100 if edit not in ("non-ascii", "crlf") else len(with_bytes) < len(pages) / 2
    assert {p.dataset for p in with_bytes if p.volatile} >= ({"registration_details"} if with_bytes else set())

    def receipts(pages):
        cuts = cut_pages(pages)
        rows = new_packs("t", cuts, {}, 1).rows()
        return [(c.sha, c.digests, c.prefix, c.suffix, c.gaps, c.volatile) for cs in cuts.values() for c in cs], rows

    made = receipts(pages)
    # a page with bytes is given no text, and the receipts made none (`Page.text`): it is made when read
    assert not [p for p in with_bytes if p.__dict__["_text"] is not None]
    assert all(p.size == len(p.data) for p in with_bytes)
    assert all(bytes(p.data) == p.text.encode() and p.size == len(p.text) for p in with_bytes)
    assert made == receipts([dataclasses.replace(p, data=None) for p in pages])
    assert sum(len(c[1]) for c in made[0]) > 1000 and len(made[1]) > 1


def test_a_page_given_no_text_needs_its_bytes():
    """`Page.text` None is made of `data` when read: a page given neither is refused where it is made."""
    with pytest.raises(TypeError, match="needs its bytes"):
        Page("users", 0, "", "/users", None)
    page = Page("users", 0, "", "/users", None, ((10, 12),), data=memoryview(b'{"value":[{}]}'))
    assert (page.size, page.decoded(), page.__dict__["_text"]) == (14, '{"value":[{}]}', None)
    assert page.text == '{"value":[{}]}' and page.__dict__["_text"] == page.text
