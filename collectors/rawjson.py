"""A JSON document parsed once, keeping the exact source text of the Graph bodies in it (`load_with_raw`).

Receipts keep each body's exact text, and each element's place in it, as Graph returned them
(`pimtrail.collectors.exportdir` reads export files with it; the elements themselves are parsed by orjson where
it gives what the stdlib scanner would, `collectors.elementjson`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from pimtrail.model import SKIPPED

from .elementjson import Elements
from .unparsed import Skipper


class NotJSON(ValueError):
    """NaN, Infinity, -Infinity, and numbers too large for a float (1e400): Python's json reads them as
    non-finite floats, JSON has no such values and Graph never writes them (the canonical encoder,
    `pimtrail.store.hashing`, could not write them back as they were)."""


def _no_constant(name: str) -> Any:
    raise NotJSON(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NotJSON(f"{text[:40]} is too large for a number")
    return value


# Receipts keep each body's exact text. `load_with_raw` parses a document once and remembers the
# source text of the objects a `spec` points at: {"raw": True} records the value itself,
# {"object": {key: spec}} and {"array": spec} descend. Anything else is decoded as usual.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)
_WS = " \t\n\r"
# a surrogate's escape (JSON allows one alone, `"\\ud800"`, which is no Unicode text), or a surrogate itself (a str
# not from a file); a false match (an escaped backslash before "ud800") costs only the walk of the value
_SURROGATE_ESCAPE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _decode(text: str, i: int) -> tuple[Any, int]:
    """The stdlib's `raw_decode`, with every lone surrogate in the value's texts (and keys) made U+FFFD, as a text
    renderer shows it (orjson and msgspec refuse such a value; the stdlib reads it as a str that cannot be encoded,
    so it could be neither hashed nor stored, and a tenant's text, a display name, would stop every collection).
    The raw receipt keeps the element's exact text, escape included."""
    value, end = _DECODER.raw_decode(text, i)
    if _SURROGATE_ESCAPE.search(text, i, end) is None:  # `whole` inlined: 60,000 keys and values of a large export
        return value, end
    return _whole(value), end


def whole(value: Any, text: str) -> Any:
    """`value`, which the stdlib parsed from `text`, with its lone surrogates made U+FFFD (as `_decode` gives it)."""
    return value if _SURROGATE_ESCAPE.search(text) is None else _whole(value)


def _whole(value: Any) -> Any:
    """`value` with each lone surrogate in its texts and keys replaced by U+FFFD (a pair, already one character as
    the stdlib reads it, stays)."""
    kind = type(value)
    if kind is str:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace") \
            if _SURROGATE.search(value) is not None else value
    if kind is list:
        return [_whole(v) for v in value]
    if kind is dict:
        return {_whole(k): _whole(v) for k, v in value.items()}
    return value


BODY_SPEC: dict[str, Any] = {"raw": True, "body": True}


def _file_spec(body: dict[str, Any]) -> dict[str, Any]:
    return {"raw": True, "array": body, "object": {"pages": {"array": {"object": {"body": body}}}}}


_FILE_SPEC = _file_spec(BODY_SPEC)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _members(text: str, i: int, member: Callable[[str, int], tuple[Any, int]]) -> tuple[dict[str, Any], int]:
    """Walk the object whose `{` is at `i`: `member(key, j)` decodes the value at `j` and returns
    (value, end). Returns the object and the position after its `}`."""
    value: dict[str, Any] = {}
    i = _skip(text, i + 1)
    while text[i] != "}":
        key, i = _decode(text, i)
        i = _skip(text, i)
        if not isinstance(key, str) or text[i] != ":":
            raise ValueError("expected a key")
        value[key], i = member(key, _skip(text, i + 1))
        i = _next(text, i, "}")
    return value, i + 1


def _elements(text: str, i: int, element: Callable[[int], tuple[Any, int]]) -> tuple[list[Any], int]:
    """Walk the array whose `[` is at `i`, `element(j)` decoding each element."""
    items: list[Any] = []
    i = _skip(text, i + 1)
    while text[i] != "]":
        item, i = element(i)
        items.append(item)
        i = _next(text, i, "]")
    return items, i + 1


def _next(text: str, i: int, close: str) -> int:
    """After a member or element ending at `i`: where the next begins (past a comma), or the `close` that ends them."""
    i = _skip(text, i)
    if text[i] == ",":
        return _skip(text, i + 1)
    if text[i] != close:
        raise ValueError(f"expected , or {close}")
    return i


def _value_array(text: str, i: int, start: int, marks: list[tuple[int, int]],
                 skipper: Skipper | None = None, fast: Elements | None = None) -> tuple[list[Any], int]:
    """`_elements` for a body's `value` array, each element's (start, end) relative to `start` added to
    `marks`: one loop without calls per element but the parser's (100,000 users a day). With a
    `skipper`, an element it recognises is not parsed: `SKIPPED` stands in for it. With `fast`, elements
    are parsed by orjson where it gives what the C scanner would (`collectors.elementjson`)."""
    items: list[Any] = []
    decode, append, mark, ws = _decode, items.append, marks.append, _WS
    known = skipper.end if skipper is not None else None
    if fast is not None:
        fast.on = True
    whole = getattr(skipper, "whole", None)  # `LineCut`: a body on one line cut at once, no element parsed
    placed = whole(text, i) if whole is not None else None
    if placed is not None:
        cut, close = placed
        marks += [(s - start, e - start) for s, e in cut]
        return [SKIPPED] * len(cut), close + 1
    decoded = fast.whole(i) if fast is not None and skipper is None else None  # typed, at once
    if decoded is not None:
        values, cut, close = decoded
        marks += [(s - start, e - start) for s, e in cut]
        return values, close + 1
    i = _skip(text, i + 1)
    if text[i] == "]":
        return items, i + 1
    while True:
        end = known(text, i) if known is not None else -1
        if end < 0:
            parsed = fast.parse(i) if fast is not None and fast.on else None
            if parsed is None:
                item, end = decode(text, i)
            else:
                item, end = parsed
            if skipper is not None:
                skipper.parsed(text, i, end)
        else:
            item = SKIPPED
        append(item)
        mark((i - start, end - start))
        char = text[end]
        if char in ws:
            end = _skip(text, end)
            char = text[end]
        if char == "]":
            return items, end + 1
        if char != ",":
            raise ValueError("expected , or ]")
        i = end + 1
        if text[i] in ws:  # one newline between elements as exports write them: no call for it
            i += 1
            if text[i] in ws:
                i = _skip(text, i)


def _walk_body(text: str, i: int, raws: dict[int, str], skipper: Skipper | None = None,
               fast: Elements | None = None, spans: bool = False) -> tuple[Any, int]:
    """A Graph body `{..., "value": [...], ...}`: its exact text goes to `raws` under id(body) (`spans`: where it
    lies in `text`, (start, end), not copied) and the (start, end) offsets of each element of `value` (relative to
    the body) under ITEMS + id(body). Elements are decoded one at a time (`_value_array`)."""
    start = i
    marks: list[tuple[int, int]] | None = None

    def member(key: str, j: int) -> tuple[Any, int]:
        nonlocal marks
        if key == "value" and text[j] == "[":
            marks = []
            return _value_array(text, j, start, marks, skipper, fast)
        if key == "value":
            marks = None
        return _decode(text, j)

    body, end = _members(text, i, member)
    raws[id(body)] = (start, end) if spans else text[start:end]  # type: ignore[assignment]
    if marks is not None:
        raws[ITEMS + id(body)] = marks  # type: ignore[assignment]
    return body, end


ITEMS = 1 << 80  # key offset of a body's element offsets in `raws` (ids are below 2**64)
FILE = -1  # key in `raws` of the file's (text, bytes) when bodies are kept as where they lie (`spans`)


def _walk(text: str, i: int, spec: dict[str, Any], raws: dict[int, str],
          fast: Elements | None = None) -> tuple[Any, int]:
    start, char = i, text[i]
    if char == "{" and spec.get("body"):
        return _walk_body(text, i, raws, spec.get("skip"), fast, spec.get("spans", False))
    if char == "{" and "object" in spec:
        value, end = _members(text, i, lambda key, j: _walk(text, j, spec["object"].get(key, {}), raws, fast))
    elif char == "[" and "array" in spec:
        value, end = _elements(text, i, lambda j: _walk(text, j, spec["array"], raws, fast))
    else:
        value, end = _decode(text, i)
    if spec.get("raw") and isinstance(value, dict):
        raws[id(value)] = text[start:end]
    return value, end


def load_with_raw(text: str, spec: dict[str, Any], data: bytes | None = None,
                  typed: Callable[[bytes | memoryview], Any] | None = None) -> tuple[Any, dict[int, str]]:
    """Parse `text` like json.loads; also return {id(object): its exact source text} for the
    objects `spec` marks. Raises ValueError (or IndexError) on malformed JSON. `data`: the text's
    UTF-8 bytes, if the caller has them (made here otherwise). `typed`: offered each element of a body's `value`
    array first (`elementjson.Elements`); what it gives stands for the element instead of its dict."""
    raws: dict[int, str] = {}
    try:
        fast: Elements | None = Elements(text, data if data is not None else text.encode(), typed)
    except UnicodeEncodeError:  # a str with lone surrogates (not from a file): the stdlib reads all of it
        fast = None
    value, end = _walk(text, _skip(text, 0), spec, raws, fast)
    if _skip(text, end) != len(text):
        raise ValueError("extra data")
    return value, raws
