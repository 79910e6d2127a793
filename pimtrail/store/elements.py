"""An element's digest and its volatile values (`pimtrail.store.receipts`), apart from the receipts' storage: the
export reader recognises known elements with them (`collectors.unparsed`) in a process that need not import the
history's schema (a first snapshot's worker)."""

from __future__ import annotations

import hashlib
import json

_DECODER = json.JSONDecoder()


def digest(text: str) -> bytes:
    """An element's digest: BLAKE2b, 16 bytes (pages keep sha256)."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def digests_at(data: bytes | memoryview, spans: tuple[tuple[int, int], ...]) -> list[bytes]:
    """`digest` of each element of an ASCII text, hashed where it lies in the text's bytes (`data`), not copied out."""
    view, blake2b = memoryview(data), hashlib.blake2b
    return [blake2b(view[s:e], digest_size=16).digest() for s, e in spans]


# -- volatile values -------------------------------------------------------------------------
def strip(text: str, keys: tuple[str, ...]) -> tuple[str, list[str | None]]:
    """Cut the value of each key's first `"key":` out of an element's text. `restore` finds the
    same place again: the text before it is unchanged, so the first match is the same."""
    values: list[str | None] = []
    for key in keys:
        pattern = f'"{key}":'
        at = text.find(pattern)
        if at < 0:
            values.append(None)
            continue
        start = at + len(pattern)
        end = text.find('"', start + 1) + 1 if text.startswith('"', start) else 0
        if end <= 0 or "\\" in text[start:end]:  # not a plain string: let the JSON scanner find its end
            try:
                _, end = _DECODER.raw_decode(text, start)
            except ValueError:
                values.append(None)
                continue
        values.append(text[start:end])
        text = text[:start] + text[end:]
    return text, values


def restore(text: str, keys: tuple[str, ...], values: list[str | None]) -> str:
    for key, value in reversed(list(zip(keys, values))):
        if value is None:
            continue
        start = text.find(f'"{key}":') + len(key) + 3
        text = text[:start] + value + text[start:]
    return text
