"""Parsing the elements of a body's `value` array with orjson, exactly as the stdlib scanner would.

The export reader (`collectors.exportdir`) cuts a body into its elements and needs each element's end, which
the stdlib's `raw_decode` gives and orjson does not; orjson parses twice as fast (a large tenant's first export:
~180,000 audit events and ~240,000 directory elements). Export files hold one element a line, as Graph's pages
are written (`{...},\\n{...}`), and a JSON string cannot hold a raw newline, so the element starting at `i` is
offered to orjson as the text up to the end of its line, without the trailing comma. orjson's value is taken
only where it is the value the stdlib scanner (`exportdir._DECODER`) gives for the same text:

- orjson reads the text as one JSON value or refuses it. A JSON object, array or string ends at its closing
  character, so a value that fills the candidate text is the one `raw_decode` finds at `i`, and ends there too.
- It refuses what the stdlib reads otherwise or refuses as well: NaN, Infinity and numbers too large for a float
  (the stdlib path raises `NotJSON` for them), lone surrogates (the stdlib makes a str of them), control
  characters, nesting past 1,024, anything not JSON. Refused, the element is read by the stdlib scanner, and
  orjson is not offered the rest of that body (a body written on one line is read as before).
- Integers outside 64 bits it reads as floats (the stdlib as ints): an element whose text holds a run of 19 or
  more digits anywhere is read by the stdlib scanner. The runs are found once per file (`long_digit_runs`).
- Floats: orjson's parsers (yyjson, or serde_json with `float_roundtrip`) round correctly, as Python's
  `float()` does: the same double for every finite decimal text.
- Duplicate keys: the last value, at the first key's place, as the stdlib's dict does.
tests/test_elementjson.py holds both to this on edge cases and random documents.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import orjson

_DIGIT_MAP = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # digits -> "0", anything else -> " "
_RUN = b"0" * 19  # 2**63 has 19 digits: any integer orjson could read as a float has a run this long
_CHUNK = 1 << 20
_WS = " \t\r"


def long_digit_runs(data: bytes, text: str) -> list[int]:
    """The offsets in `text` (whose UTF-8 bytes are `data`) where a run of 19 or more digits begins, ascending.
    Found in the bytes by C loops (a translation and a search, a chunk at a time); rare in Graph's data."""
    runs: list[int] = []
    for start in range(0, len(data), _CHUNK):
        chunk = data[start:start + _CHUNK + len(_RUN) - 1].translate(_DIGIT_MAP)
        at = chunk.find(_RUN)
        while 0 <= at < _CHUNK:  # a run beginning in the overlap is the next chunk's
            runs.append(start + at)
            at = chunk.find(b" ", at)  # past this run
            at = chunk.find(_RUN, at) if at >= 0 else -1
    if runs and len(data) != len(text):  # byte offsets -> character offsets (UTF-8 before each)
        chars, last, at = [], 0, 0
        for offset in runs:
            at += len(data[last:offset].decode("utf-8", "replace"))
            chars.append(at)
            last = offset
        runs = chars
    return runs


class Elements:
    """orjson for the elements of one file's bodies (`exportdir._value_array`); `parse` gives (value, end) or
    None where the stdlib scanner is to read the element."""

    __slots__ = ("text", "view", "runs", "on")

    def __init__(self, text: str, data: bytes):
        self.text = text
        self.view = memoryview(data) if len(data) == len(text) else None  # ASCII: offsets are bytes' too
        self.runs = long_digit_runs(data, text)
        self.on = True  # off for the rest of a body once orjson refused an element of it

    def parse(self, i: int) -> tuple[Any, int] | None:
        text = self.text
        if text[i] != "{":
            return None
        end = text.find("\n", i)
        if end < 0:
            end = len(text)
        if text[end - 1] == ",":  # as files are written: "},\n"
            end -= 1
        if text[end - 1] != "}":  # else the end of the line's last non-blank, before a comma
            while end > i and text[end - 1] in _WS:
                end -= 1
            if text[end - 1] == ",":
                end -= 1
                while end > i and text[end - 1] in _WS:
                    end -= 1
            if end <= i:
                return None
        runs = self.runs
        if runs:
            at = bisect_left(runs, i)
            if at < len(runs) and runs[at] < end:
                return None
        try:
            value = orjson.loads(self.view[i:end] if self.view is not None else text[i:end])
        except orjson.JSONDecodeError:
            self.on = False
            return None
        return value, end
