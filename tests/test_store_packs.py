"""Element packs: the new elements of a snapshot numbered, packed in order, compressed by threads, and read back."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore
from pimtrail.synthetic import generate


def _as_zlib(path: str) -> int:
    """Store every pack as packs were stored before round 10 (zlib), behind the store's back."""
    import zlib

    from pimtrail.store.packs import unpack

    with sqlite3.connect(path) as conn:
        packs = conn.execute("SELECT tenant_id, first_n, data FROM item_pack").fetchall()
        for tenant, first, data in packs:
            texts = unpack(data)
            body = (json.dumps([len(t) for t in texts]) + "\n" + "".join(texts)).encode()
            conn.execute("UPDATE item_pack SET data = ? WHERE tenant_id = ? AND first_n = ?",
                         (zlib.compress(body, 1), tenant, first))
    return len(packs)


def test_new_packs_are_zstd_frames_and_packs_stored_as_zlib_before_still_read(tmp_path):
    """Packs are zstd frames since round 10; a history whose packs are zlib (as before) verifies, gives its
    pages back byte for byte, and a daily read against it (which reads the packs' lengths) stores what a
    history of zstd packs stores."""
    from pimtrail.collect import read_against
    from pimtrail.store.packs import pack_lengths, unpack

    roots = generate(tmp_path / "exports", "small", days=2, churn=0.02)
    paths = [str(tmp_path / "zstd.db"), str(tmp_path / "zlib.db")]
    for path in paths:
        with HistoryStore.open(path, create=True) as store:
            store.ingest(read_export(roots[0]))
    with sqlite3.connect(paths[0]) as conn:
        stored = [bytes(d) for (d,) in conn.execute("SELECT data FROM item_pack")]
    assert stored and all(d[:4] == b"\x28\xb5\x2f\xfd" for d in stored)
    assert _as_zlib(paths[1]) == len(stored)
    with sqlite3.connect(paths[1]) as conn:
        old = [bytes(d) for (d,) in conn.execute("SELECT data FROM item_pack ORDER BY first_n")]
    with sqlite3.connect(paths[0]) as conn:
        new = [bytes(d) for (d,) in conn.execute("SELECT data FROM item_pack ORDER BY first_n")]
    assert [unpack(d) for d in old] == [unpack(d) for d in new]
    assert [pack_lengths(d) for d in old] == [pack_lengths(d) for d in new] == [list(map(len, unpack(d))) for d in new]
    snapshots = []
    for path in paths:
        with HistoryStore.open(path) as store:
            snap = read_against(store, roots[1])
            assert snap.based_on is not None  # the daily read, which reads the previous packs' lengths
            info = store.ingest(snap)
            for page in snap.pages:
                assert store.receipt(snap.tenant_id, hashlib.sha256(page.payload).hexdigest(), info.id) == page.payload
            assert store.verify().ok
            snapshots.append((info.chain_hash, info.fact_count, info.event_count))  # the state digest in it
    assert snapshots[0] == snapshots[1]


def test_a_pack_frame_claiming_more_than_a_pack_holds_is_refused_not_allocated():
    """python-zstandard allocates what a frame's header claims: a forged size is refused before that."""
    import zstandard

    from pimtrail.store.packs import unpack

    forged = bytes.fromhex("28b52ffd" "e0" "0000000000010000" "00")  # a frame claiming 2**40 bytes
    assert zstandard.frame_content_size(forged) == 1 << 40
    with pytest.raises(zstandard.ZstdError, match="claiming"):
        unpack(forged)


def test_a_pack_without_a_line_break_is_refused_after_a_bounded_read(monkeypatch):
    """The lengths of a pack's elements end at its first line break: a forged pack without one (32 MB of one byte
    make a zstd frame of ~1 kB) is refused once HEAD_MAX bytes are read, not read to its end."""
    import zstandard

    from pimtrail.store import packs

    read = []
    chunks = packs._head_chunks

    def counted(data, size=1 << 16):
        for chunk in chunks(data, size):
            read.append(len(chunk))
            yield chunk

    monkeypatch.setattr(packs, "_head_chunks", counted)
    forged = zstandard.ZstdCompressor(level=1).compress(b"x" * (32 << 20))
    assert len(forged) < 4096
    with pytest.raises(ValueError, match="without its lengths"):
        packs.pack_lengths(forged)
    assert packs.HEAD_MAX < sum(read) <= packs.HEAD_MAX + (1 << 16)
    assert packs.pack_lengths(packs.compress(b"[3,2]\nabcde")) == [3, 2]


def test_packs_take_elements_until_they_hold_chars_characters(monkeypatch):
    """`packs.made` ends a pack at the element that brings it to `CHARS` characters or more (one element at least),
    as a running count element by element would."""
    import random

    from pimtrail.store import packs

    def reference(texts):
        out, start = [], 0
        while start < len(texts):
            end, size = start, 0
            while end < len(texts) and (size < packs.CHARS or end == start):
                size += len(texts[end])
                end += 1
            out.append((start, end, size))
            start = end
        return out

    monkeypatch.setattr(packs, "CHARS", 10)
    rng = random.Random(7)
    for texts in ([], ["x" * 25], ["ab"] * 5, ["a" * 10, "b", "c" * 9, "d"], *(
            ["e" * rng.randint(0, 14) for _ in range(rng.randint(1, 40))] for _ in range(200))):
        digests = [bytes([i % 256]) * 16 for i in range(len(texts))]
        made = list(packs.made("t", 5, texts, digests))
        assert [(first - 5, first - 5 + count, chars) for _, first, count, chars, _, _ in made] == reference(texts)
        for _, first, count, _, joined, data in made:
            assert joined == b"".join(digests[first - 5:first - 5 + count])
            assert packs.unpack(packs.compress(data)) == texts[first - 5:first - 5 + count]


def test_packs_join_elements_given_as_bytes_as_their_texts():
    """`packs.made` takes an element as its ASCII bytes (a view of its page's) as it takes its text."""
    from pimtrail.store import packs

    texts = ['{"a":1}', '{"b":"x"}', "{}"] * 50
    digests = [bytes([i]) * 16 for i in range(len(texts))]
    mixed = [memoryview(t.encode()) if i % 3 else t for i, t in enumerate(texts)]
    assert list(packs.made("t", 1, mixed, digests)) == list(packs.made("t", 1, texts, digests))
    assert list(packs.made("t", 1, [memoryview(t.encode()) for t in texts], digests)) == \
        list(packs.made("t", 1, texts, digests))


def test_packs_data_is_made_by_the_compressing_threads_and_not_held(monkeypatch):
    """`Compressing` (what `new_packs` gives) hands each pack's elements to its threads, which join them into its data
    (`packs.data`) and compress it: no pack's data is made on the caller's thread, none is held once compressed (the
    large first snapshot's 364 MB were, until the rows were written), and the rows are those `packs.made` gives,
    compressed."""
    import gc
    import threading
    import weakref

    from pimtrail.store import packs, receipts

    class Data(bytearray):  # bytes take no weak reference
        pass

    made: list[weakref.ref] = []
    threads: set[int] = set()
    real = packs.data

    def data(part):
        out = Data(real(part))
        made.append(weakref.ref(out))
        threads.add(threading.get_ident())
        return out

    monkeypatch.setattr(packs, "CHARS", 64)
    monkeypatch.setattr(packs, "data", data)
    texts = [f'{{"id":"{i}","name":"{"x" * (i % 17)}"}}' for i in range(300)]
    digests = [i.to_bytes(16, "big") for i in range(len(texts))]
    compressing = receipts.Compressing(list(packs.parts("t", 1, texts, digests)))
    for future in compressing.compressed:
        future.result()
    gc.collect()
    assert len(made) > 10 and not [ref for ref in made if ref() is not None]
    assert threads and threading.get_ident() not in threads
    monkeypatch.setattr(packs, "data", real)
    assert compressing.rows() == [(*row[:5], packs.compress(row[5])) for row in packs.made("t", 1, texts, digests)]


def test_new_elements_are_numbered_in_order_and_one_there_twice_gets_one_number():
    """`new_packs` numbers the elements `known` lacks in page order; an element in two places (within a page, or in
    two pages) gets the number of its first place. Pages with no element there twice take a path of C loops, the
    others a loop per element: both number as the plain rule says."""
    import random

    from pimtrail.store.receipts import new_packs

    class Cut:  # what new_packs reads of a receipts._Cut
        def __init__(self, digests):
            self.digests = digests

        def texts(self, indices):
            return [self.digests[i].hex() for i in indices]

    rng = random.Random(5)
    for _ in range(200):
        pool = [bytes([n]) * 16 for n in range(rng.randint(1, 30))]
        known = {d: 1000 + n for n, d in enumerate(rng.sample(pool, rng.randint(0, len(pool))))}
        cuts = {name: [Cut([rng.choice(pool) for _ in range(rng.randint(0, 12))]) for _ in range(rng.randint(1, 3))]
                for name in ("a", "b")}
        expected, numbered, texts = dict(known), [], []  # the plain rule, one element at a time
        for cut in (c for cs in cuts.values() for c in cs):
            for dig in cut.digests:
                if dig not in expected:
                    expected[dig] = 1 + len(numbered)
                    numbered.append(dig)
                    texts.append(dig.hex())
        rows = new_packs("t", cuts, known, 1).rows()
        assert known == expected
        assert b"".join(r[4] for r in rows) == b"".join(numbered)
        assert [r[1] for r in rows][:1] == ([1] if numbered else [])
        assert sum(r[2] for r in rows) == len(numbered)
