"""How a blob's text is stored (table `blob`): zlib on its own, or, for a dataset's listing, as a zstd delta
against the same dataset's listing in the previous snapshot (docs/architecture.md "Listings as deltas").

A listing names each page of a dataset: its request, parent, sha256 and layout (the element numbers as runs).
At 0.5 % daily churn most pages of the users change every day, so every day brings a new listing, and as
changed users get new element numbers its runs break up: stored whole, the large tenant's users listing took
17.6 kB on the first day and 62.1 kB on the fifth, growing ~8 kB a day. As a delta it costs what changed: the
fifth day's users listing 24.7 kB, its group members 1.5 kB instead of 57.1 kB.

A delta is `MAGIC`, its depth (1 byte), the sha256 of its base (32 bytes) and a zstd frame made with the base's
text as the dictionary. A delta's base may be a delta too, up to `MAX_DEPTH`; then the listing is stored whole
again, so that reading one decompresses at most `MAX_DEPTH` + 1 frames (~0.4 ms each for the users). The key
stays the sha256 of the text, so receipts, content hashes and `verify` are unchanged; blobs stored before are
zlib and are read as they were.
"""

from __future__ import annotations

import zlib
from typing import Callable

import zstandard
from sqlalchemy import select
from sqlalchemy.engine import Connection

from pimtrail.store.frames import bounded
from pimtrail.store.schema import blob_table

MAGIC = b"PTD1"  # never the start of a zlib stream (its first byte's low nibble is 8)
HEAD = len(MAGIC) + 1 + 32  # magic, depth, base sha256
LEVEL = 1  # zlib level of blobs stored whole: 3x faster than 6, ~10 % larger on Graph JSON (packs: store.packs)
DELTA_LEVEL = 6  # zstd level of a delta (~5 ms for the users listing)
MAX_DEPTH = 16
MAX_TEXT = 1 << 30  # bytes a listing's delta may decompress to


class BlobError(ValueError):
    """Stored data that does not decompress, or names a base the history lacks."""


def whole(text: bytes) -> bytes:
    return zlib.compress(text, LEVEL)


def depth(data: bytes) -> int:
    """0 for a blob stored whole, else how many deltas lead to one."""
    return data[len(MAGIC)] if bytes(data[:len(MAGIC)]) == MAGIC else 0


def base_of(data: bytes) -> str | None:
    """The sha256 of the blob a delta is made against (None: stored whole)."""
    return bytes(data[len(MAGIC) + 1:HEAD]).hex() if depth(data) else None


def delta_or_whole(text: bytes, base: tuple[str, bytes, int] | None) -> bytes:
    """`text` as stored: a delta against `base` ((sha256, text, depth) of a stored blob) when that is smaller
    than the text stored whole and the chain stays within `MAX_DEPTH`."""
    stored = whole(text)
    if base is None or base[2] >= MAX_DEPTH:
        return stored
    sha, base_text, base_depth = base
    frame = zstandard.ZstdCompressor(level=DELTA_LEVEL, dict_data=_raw_dict(base_text), write_checksum=False,
                                     write_dict_id=False).compress(text)
    if HEAD + len(frame) >= len(stored):
        return stored
    return MAGIC + bytes([base_depth + 1]) + bytes.fromhex(sha) + frame


def text_of(data: bytes, fetch: Callable[[str], bytes | None]) -> bytes:
    """A blob's text from its stored data; `fetch` gives another blob's stored data by sha256 (a delta's base).
    Raises BlobError when it does not decompress or its chain is broken."""
    chain = [bytes(data)]
    first = depth(chain[0])  # each base is one step nearer a blob stored whole: a chain cannot loop
    try:
        while depth(chain[-1]):
            if first > MAX_DEPTH or depth(chain[-1]) != first - len(chain) + 1:
                raise BlobError("a listing's chain of deltas does not match its depth")
            base = fetch(base_of(chain[-1]))
            if base is None:
                raise BlobError(f"a listing's base {base_of(chain[-1])[:12]} is missing")
            chain.append(bytes(base))
        if len(chain) != first + 1:
            raise BlobError("a listing's chain of deltas does not match its depth")
        text = zlib.decompress(chain.pop())
        while chain:
            text = bounded(chain.pop()[HEAD:], MAX_TEXT, zstandard.ZstdDecompressor(dict_data=_raw_dict(text)))
        return text
    except (zlib.error, zstandard.ZstdError) as exc:
        raise BlobError(str(exc)) from exc


def _raw_dict(text: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(text, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def fetcher(conn: Connection, tenant: str) -> Callable[[str], bytes | None]:
    def fetch(sha: str) -> bytes | None:
        data = conn.execute(select(blob_table.c.data).where(
            blob_table.c.tenant_id == tenant, blob_table.c.sha256 == sha)).scalar()
        return None if data is None else bytes(data)
    return fetch


def read(conn: Connection, tenant: str, sha: str) -> bytes | None:
    """A blob's text by its sha256 (None: not stored)."""
    fetch = fetcher(conn, tenant)
    data = fetch(sha)
    return None if data is None else text_of(data, fetch)


def store(conn: Connection, tenant: str, texts: dict[str, bytes], bases: dict[str, str]) -> None:
    """Store the blobs not stored yet ({sha256: text}). `bases`: for a listing, the sha256 of the same dataset's
    listing in the previous snapshot, which it is stored as a delta against."""
    from pimtrail.store.receipts import insert

    known: set[str] = set()
    shas = sorted(texts)
    for start in range(0, len(shas), 500):
        known.update(conn.execute(select(blob_table.c.sha256).where(
            blob_table.c.tenant_id == tenant, blob_table.c.sha256.in_(shas[start:start + 500]))).scalars())
    fetch, rows = fetcher(conn, tenant), []
    for sha, text in texts.items():
        if sha in known:
            continue
        previous = fetch(bases[sha]) if sha in bases else None
        base = None if previous is None else (bases[sha], text_of(previous, fetch), depth(previous))
        rows.append((tenant, sha, len(text), delta_or_whole(text, base)))
    insert(conn, blob_table, ("tenant_id", "sha256", "size", "data"), rows)
