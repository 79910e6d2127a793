"""The data of an element pack (`item_pack`, `pimtrail.store.receipts`): the lengths of its elements' texts as a JSON
array, a line break, the texts one after the other; compressed as one zstd frame (level `LEVEL`). Packs stored
before round 10 are zlib streams and are read as they were: a zstd frame's magic is never the start of a zlib
stream (its first byte is 0x?8). The digests column holds each element's 16-byte digest in order."""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import struct
import zlib
from typing import Iterator

import zstandard

from pimtrail.store.frames import bounded

CHARS = 1 << 20  # elements per pack: up to ~1 MB of text, compressed together
# zstd level of a new pack. The large tenant's 364 MB of elements: zstd 1 took 0.79 s of CPU and made 28.9 MB,
# zlib 1 (the packs' format before) 2.68 s and 47.2 MB; zstd also reads them back 3x faster (docs/benchmarks.md,
# "First ingest, round 10")
LEVEL = 1
MAX = 1 << 30  # bytes a pack may decompress to: its frame says its size, and a forged one is refused
HEAD_MAX = 16 << 20  # bytes the lengths of a pack's elements may take (~1 MB of text: a few kB)
_ZSTD = b"\x28\xb5\x2f\xfd"  # a zstd frame's magic; a zlib stream begins with 0x?8


def made(tenant: str, first: int, texts: list[str | memoryview],
         digests: list[bytes]) -> Iterator[tuple[str, int, int, int, bytes, bytes]]:
    """(tenant, first_n, count, chars, digests, uncompressed data) per pack of new elements (`parts`, each joined into
    its `data`)."""
    for *pack, part in parts(tenant, first, texts, digests):
        yield (*pack, data(part))  # type: ignore[misc]


def parts(tenant: str, first: int, texts: list[str | memoryview],
          digests: list[bytes]) -> Iterator[tuple[str, int, int, int, bytes, list[str | memoryview]]]:
    """(tenant, first_n, count, chars, digests, its elements' texts) per pack of new elements: each pack takes elements
    until they hold `CHARS` characters or more (at least one), its end found by bisecting their running total. An
    element may be given as its ASCII bytes (a view of its page's, `receipts._Cut.texts`): its length is its
    characters' count then."""
    total = list(itertools.accumulate(map(len, texts)))
    start, before = 0, 0
    while start < len(texts):
        end = min(bisect.bisect_left(total, before + CHARS, start) + 1, len(texts))
        yield tenant, first + start, end - start, total[end - 1] - before, b"".join(digests[start:end]), \
            texts[start:end]
        start, before = end, total[end - 1]


def data(part: list[str | memoryview]) -> bytes:
    """A pack's uncompressed data: the lengths of its elements' texts as a JSON array, a line break, the texts (those
    given as bytes joined as they are)."""
    head = json.dumps(list(map(len, part))) + "\n"
    if all(type(text) is str for text in part):
        return (head + "".join(part)).encode()
    return b"".join([head.encode(), *[text.encode() if type(text) is str else text for text in part]])


def compress(data: bytes) -> bytes:
    """A pack's data as stored: one zstd frame (its content size in the header)."""
    return zstandard.ZstdCompressor(level=LEVEL).compress(data)


def _inflate(data: bytes) -> bytes:
    data = bytes(data)  # the PostgreSQL driver may give a memoryview
    if data[:4] == _ZSTD:
        return bounded(data, MAX)
    return zlib.decompress(data)  # a pack stored before round 10


def split_digests(packed: bytes) -> list[bytes]:
    """A pack's digests column, one 16-byte digest an element."""
    packed = bytes(packed)  # the PostgreSQL driver may give a memoryview
    if len(packed) % 16:  # not as written (`verify` says so): the last one short
        return [packed[i:i + 16] for i in range(0, len(packed), 16)]
    return list(map(operator.itemgetter(0), struct.iter_unpack("16s", packed)))  # a C loop: 4x a slice each


def _head_chunks(data: bytes, size: int = 1 << 16) -> Iterator[bytes]:
    """A pack's data decompressed `size` bytes at a time, as far as it is read."""
    if data[:4] == _ZSTD:
        reader = zstandard.ZstdDecompressor().stream_reader(data)
        yield from iter(lambda: reader.read(size), b"")
        return
    inflate = zlib.decompressobj()
    yield inflate.decompress(data, size)
    while inflate.unconsumed_tail:
        yield inflate.decompress(inflate.unconsumed_tail, size)


def pack_lengths(data: bytes) -> list[int]:
    """The lengths of a pack's elements, from the head of its data: only that much is decompressed. ValueError when
    no line break ends them within `HEAD_MAX` bytes (a forged pack: zstd makes a gigabyte of one byte of little)."""
    head = b""
    for chunk in _head_chunks(bytes(data)):
        end = chunk.find(b"\n")
        if end >= 0:
            return json.loads(head + chunk[:end])
        head += chunk
        if len(head) > HEAD_MAX:
            break
    raise ValueError("a pack without its lengths")


def unpack(data: bytes) -> list[str]:
    """A pack's element texts (zstandard.ZstdError, zlib.error or ValueError when it does not read)."""
    text = _inflate(data).decode()
    head, _, body = text.partition("\n")
    out, at = [], 0
    for length in json.loads(head):
        out.append(body[at:at + length])
        at += length
    return out
