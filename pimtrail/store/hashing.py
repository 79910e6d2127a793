"""Canonical JSON and the hashes of the snapshot chain.

A fact's *element* hash covers its kind, key and data. The state of a snapshot is the multiset of
the elements valid in it; its digest is their sum modulo 2**256, so a new snapshot's digest is the
previous one plus what was added minus what was closed, and `verify` can recompute every digest
from the fact rows in one pass.
"""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from operator import eq, itemgetter
from typing import Any

import orjson

MOD = 1 << 256
GENESIS = "0" * 64


# The canonical form is the stdlib encoder's: sorted keys, no spaces, UTF-8 as it is, floats as repr.
# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# orjson writes the same bytes ~8 times faster (a large tenant's first snapshot: 225 MB of audit events and
# 100 MB of facts), except for what it does not take the same way, which then goes to the stdlib encoder:
# - it raises on a key that is not a string, an integer past 64 bits, a lone surrogate, and (passed through)
#   datetimes, dataclasses and subclasses of str/int/dict/list: the stdlib says what it always said, or raises;
# - a float below 1e-4 in size it writes as 0.0000..., and exponents as e-7 where repr writes e-07: found by
#   their form (`_float_written_otherwise`; a string that looks so only costs time).
# NaN and infinities it would write as null: they never get here, the export reader refuses them as the
# JSON they are not (collectors/exportdir.py).
_ORJSON = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
           | orjson.OPT_PASSTHROUGH_SUBCLASS)


def canonical(value: Any) -> bytes:
    """Stable JSON bytes; raises TypeError on anything that is not JSON-native (orjson also writes a UUID or a
    plain Enum, which no normaliser makes: what is hashed comes from parsed JSON)."""
    out = _by_orjson(value, _ORJSON)
    return _ENCODE(value).encode() if out is None else out


def _by_orjson(value: Any, option: int) -> bytes | None:
    """orjson's text of a dict or list where it is the stdlib encoder's (see above), else None."""
    if type(value) is dict or type(value) is list:
        try:
            out = orjson.dumps(value, option=option)
        except TypeError:  # orjson.JSONEncodeError
            return None
        if not _float_written_otherwise(out):
            return out
    return None


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ORJSON_ORDERED = _ORJSON & ~orjson.OPT_SORT_KEYS


def compact(value: Any) -> str:
    """JSON text as `json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)` writes it, keys in their order:
    orjson where it writes the same (as `canonical`), ~8 times faster (a large first snapshot's 58,000 activation
    joins: 0.38 s of the stdlib's)."""
    out = _by_orjson(value, _ORJSON_ORDERED)
    return _COMPACT(value) if out is None else out.decode()


# a number written with a negative exponent: "e-", its digits, and the end of the number (compact JSON: ',', '}' or
# ']'). In a GUID "e-" is followed by hex and then '-' or '"'; a string that reads so only costs time
_EXPONENT = re.compile(rb"e-[0-9]+[,}\]]")


def _float_written_otherwise(out: bytes, find=bytes.find, exponent=_EXPONENT.search) -> bool:
    """Whether `out` (orjson's text of a dict or list) may hold a float orjson writes otherwise than repr (True
    sends it to the stdlib encoder, so a doubt costs time only):
    - one with a negative exponent, which repr writes with two digits (e-07) and orjson with one: found by one
      regex search for "e-", digits and the number's end (GUIDs hold "e-" in half the audit events; the large
      first snapshot's 180,000 events: 0.33 s against 0.49 s for a walk back from each "e-");
    - one below 1e-4 in size, which repr writes with an exponent and orjson as 0.0000...: "0.0000" found after
      ':', ',', '[' or a number's '-'."""
    if exponent(out) is not None:
        return True
    at = find(out, b"0.0000")
    while at > 0:
        if out[at - 1] in b":,[-":
            return True
        at = find(out, b"0.0000", at + 6)
    return False


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(data: dict[str, Any], textual: bool = False) -> tuple[str, str]:
    """A fact's or event's data -> (canonical JSON text as stored, its digest). `textual`: the data holds no number,
    only texts, true/false, nulls, and lists and objects of them (a record built from an element decoded typed,
    `FactRecord.textual`), so orjson's text is taken without looking for floats it writes otherwise: the search was
    ~1.5 us of each of the large first snapshot's 180,000 audit events and 200,000 users and registration rows."""
    raw = canonical(data) if not textual else _textual(data)
    return raw.decode(), hashlib.sha256(raw).hexdigest()


def _textual(value: Any) -> bytes:
    """`canonical` of a dict holding no number (`encode`'s `textual`)."""
    try:
        return orjson.dumps(value, option=_ORJSON)
    except TypeError:  # a lone surrogate (the reader gives none): the stdlib raises as it always did
        return _ENCODE(value).encode()


def cuts_digest(cuts: list[tuple[tuple[int, int], ...] | None]) -> str:
    """sha256 of where pages' elements lie (`Page.items`, in page order): two reads of the same texts give the
    same one when they cut them alike (`collectors.unparsed.LineCut`)."""
    out = hashlib.sha256()
    for items in cuts:
        if items is None:
            out.update(b"\xff" * 8)
            continue
        out.update(len(items).to_bytes(8, "little"))
        out.update(array("q", [n for mark in items for n in mark]).tobytes())
    return out.hexdigest()


def text_digest(text: str) -> str:
    """Digest of stored data text: hashed exactly as stored, so any edit shows."""
    return sha256_hex(text.encode())


def element(kind: str, key: str, digest: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{kind}\0{key}\0{digest}".encode()).digest(), "big")


def add(state: str, value: int) -> str:
    return format((int(state, 16) + value) % MOD, "064x")


def sub(state: str, value: int) -> str:
    return format((int(state, 16) - value) % MOD, "064x")


def events_digest(items: list[tuple[str, str, str]]) -> str:
    """Digest of the events a snapshot brought: sorted (kind, source_id, digest) triples."""
    return sha256_hex(canonical(_sorted_triples(items)))


def _sorted_triples(items: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """`sorted(items)`, in half the time when no (kind, source id) is there twice (as a snapshot's new events are
    unique by them): each kind's triples sorted by their source ids alone, a string key (the large first
    snapshot's 180,000: 0.16 s against 0.33 s). A pair there twice: the tuples sorted whole."""
    by_kind: dict[str, list[tuple[str, str, str]]] = {}
    for item in items:
        by_kind.setdefault(item[0], []).append(item)
    out: list[tuple[str, str, str]] = []
    for kind in sorted(by_kind):
        group = by_kind[kind]
        group.sort(key=itemgetter(1))
        sources = list(map(itemgetter(1), group))
        if any(map(eq, sources, sources[1:])):
            return sorted(items)
        out += group
    return out


def chain(prev_hash: str, content_hash: str) -> str:
    return sha256_hex(f"{prev_hash}{content_hash}".encode())
