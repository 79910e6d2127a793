"""Event data as stored (migration 0005): each event's canonical JSON text compressed on its own as a
zstd frame (`event.zdata`), with a dictionary trained per tenant from its own audit events (`event_dict`).

An audit event is ~1.25 kB of JSON, most of it names and shapes every event repeats; alone, zlib makes
~550 bytes of it, a frame with the tenant's dictionary ~190 (docs/architecture.md, "Event data"). Each
event stays its own frame, so any one is read without its neighbours, and what is hashed is unchanged:
the canonical text (`hashing.encode`), recomputed by `verify` from the decompressed frame. A dictionary
is kept for good once stored (the frames name it by its id); it is trained when an ingest brings at least
`DICT_MIN` events and the tenant has none yet, until then frames are made without one. A changed
dictionary or frame makes other text, so `verify` finds it as it finds an edited event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import zstandard

from pimtrail.store.frames import bounded

if TYPE_CHECKING:  # imported where the history is read or written: a worker making rows does without them
    from sqlalchemy.engine import Connection

LEVEL = 1  # zstd level: the large first snapshot's 180,000 events 0.84-1.12 s of CPU and 32.63 MB; level 3 1.08-1.49 s, 32.37 MB
DICT_SIZE = 32 * 1024
DICT_MIN = 1000  # events an ingest must bring to train the tenant's dictionary from
MAX_TEXT = 16 << 20  # bytes an event's text may decompress to (~1.25 kB each)
SAMPLES = 2000  # events the dictionary is trained from at most (spread over those given): the large tenant's 180,000
# events in 32.9 MB of frames from a dictionary of 2,000 (0.12 s to train) as of 5,000 (32.8 MB, 0.26 s); 1,000-4,000:
# 32.0-33.9 MB, no trend


class EventDataError(ValueError):
    """A stored frame that does not decompress (corrupt, or naming a dictionary the history lacks)."""


class Codec:
    """Compress and decompress one tenant's event texts. Not for sharing between threads."""

    def __init__(self, dictionaries: dict[int, bytes]):
        self._dicts = {i: zstandard.ZstdCompressionDict(d) for i, d in dictionaries.items()}
        newest = max(self._dicts, default=None)
        # frames record their dictionary's id (0: none) and their size
        self._compressor = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=self._dicts[newest] if newest is not None else None,
            write_checksum=False, write_content_size=True, write_dict_id=True)
        self._decompressors = {0: zstandard.ZstdDecompressor()}
        self._decompressors.update({i: zstandard.ZstdDecompressor(dict_data=d) for i, d in self._dicts.items()})
        self._only = newest if len(self._dicts) == 1 else None  # a frame naming another id fails in zstd
        self.trained: tuple[int, bytes] | None = None  # (id, dictionary) made by `first`, not stored yet

    @classmethod
    def load(cls, conn: Connection, tenant: str) -> "Codec":
        from sqlalchemy import select

        from pimtrail.store.schema import event_dict_table

        return cls({i: bytes(d) for i, d in conn.execute(select(event_dict_table.c.dict_id, event_dict_table.c.data)
                                                          .where(event_dict_table.c.tenant_id == tenant))})

    @classmethod
    def for_writing(cls, conn: Connection, tenant: str, texts: list[str]) -> "Codec":
        """The tenant's codec; a tenant without a dictionary first gets one trained from `texts` when
        they are enough (stored in `event_dict`, inside the caller's transaction)."""
        codec = cls.load(conn, tenant)
        if codec._dicts:
            return codec
        codec = cls.first(texts)
        if codec.trained is not None:
            store_dictionary(conn, tenant, codec.trained)
        return codec

    @classmethod
    def first(cls, texts: list[str]) -> "Codec":
        """The codec of a tenant without a dictionary: with one trained from `texts` when they are enough,
        which its `trained` holds for the caller to store (`store_dictionary`)."""
        trained = train(texts) if len(texts) >= DICT_MIN else None
        codec = cls(dict([trained]) if trained is not None else {})
        codec.trained = trained
        return codec

    def compress(self, text: str) -> bytes:
        return self._compressor.compress(text.encode())

    def decompress(self, data: bytes) -> str:
        try:
            # the frame header's descriptor (its 5th byte) says whether a dictionary id follows: read the id
            # only when the tenant has more than one dictionary (0.5 us a frame, an eighth of the rest)
            if not data[4] & 3:
                dict_id = 0
            elif self._only is not None:
                dict_id = self._only
            else:
                dict_id = zstandard.get_frame_parameters(data).dict_id
            return bounded(data, MAX_TEXT, self._decompressors[dict_id]).decode()
        except (zstandard.ZstdError, KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise EventDataError(f"stored event data does not decompress ({exc})") from exc


def store_dictionary(conn: Connection, tenant: str, trained: tuple[int, bytes]) -> None:
    from pimtrail.store.schema import event_dict_table

    dict_id, data = trained
    conn.execute(event_dict_table.insert().values(tenant_id=tenant, dict_id=dict_id, data=data))


def train(texts: list[str]) -> tuple[int, bytes] | None:
    """(dictionary id, dictionary) trained from up to SAMPLES of `texts` spread evenly, or None when
    zstd finds too little to train on."""
    step = max(1, -(-len(texts) // SAMPLES))  # spread over all of them: 3,999 texts give every other one
    samples = [t.encode() for t in texts[::step][:SAMPLES]]
    try:
        trained = zstandard.train_dictionary(DICT_SIZE, samples)
    except zstandard.ZstdError:
        return None
    return trained.dict_id(), trained.as_bytes()


def holds(texts: Iterable[str] | None):
    """A test of an event's text for `HistoryStore.events(contains=...)`: holds one of `texts`, letter
    case ignored (casefold, character by character, so a text's fold is found in the fold of a text
    holding it; ASCII texts are looked for in the text's `lower()`, 2.5 times faster, which keeps every
    ASCII letter's place). None: no test. A text with a quote, backslash or control character would be
    escaped in the JSON, so it is not looked for (None: the caller reads everything and checks the field)."""
    if texts is None:
        return None
    texts = list(texts)
    if any(not text or any(c in text for c in '"\\') or any(ord(c) < 32 for c in text) for text in texts):
        return None
    if not texts:
        return lambda _text: False
    fold = str.lower if all(text.isascii() for text in texts) else str.casefold
    folded = [fold(text) for text in texts]
    if len(folded) == 1:
        [one] = folded
        return lambda text: one in fold(text)
    if len(folded) == 2:  # what the controls ask for; a generator per event would cost as much as the fold
        one, two = folded
        return lambda text: one in (text := fold(text)) or two in text

    def test(text: str) -> bool:
        text = fold(text)
        for f in folded:
            if f in text:
                return True
        return False

    return test
