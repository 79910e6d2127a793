"""Canonical JSON and the hashes of the snapshot chain.

A fact's *element* hash covers its kind, key and data. The state of a snapshot is the multiset of
the elements valid in it; its digest is their sum modulo 2**256, so a new snapshot's digest is the
previous one plus what was added minus what was closed, and `verify` can recompute every digest
from the fact rows in one pass.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MOD = 1 << 256
GENESIS = "0" * 64


# one encoder for every call: json.dumps with options builds a new one each time (a third of the
# cost of encoding 350,000 small facts)
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(value: Any) -> bytes:
    """Stable JSON bytes; raises TypeError on anything that is not JSON-native."""
    return _ENCODE(value).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(data: dict[str, Any]) -> tuple[str, str]:
    """A fact's or event's data -> (canonical JSON text as stored, its digest)."""
    raw = canonical(data)
    return raw.decode(), sha256_hex(raw)


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
    return sha256_hex(canonical(sorted(items)))


def chain(prev_hash: str, content_hash: str) -> str:
    return sha256_hex(f"{prev_hash}{content_hash}".encode())
