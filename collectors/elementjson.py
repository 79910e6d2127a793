"""Parsing the elements of a body's `value` array with orjson, exactly as the stdlib scanner would.

The export reader (`collectors.exportdir`) cuts a body into its elements and needs each element's end, which
the stdlib's `raw_decode` gives and orjson does not; orjson parses ~1.6 times as fast (a large tenant's first export:
~180,000 audit events and ~240,000 directory elements). Export files hold one element a line, as Graph's pages
are written (`{...},\\n{...}`), and a JSON string cannot hold a raw newline, so the element starting at `i` is
offered to orjson as the text up to the end of its line, without the trailing comma. orjson's value is taken
only where it is the value the stdlib scanner (`rawjson._DECODER`) gives for the same text:

- Only objects are offered. orjson reads the text as one JSON value or refuses it; an object ends at its closing
  brace, so one that fills the candidate text is the one `raw_decode` finds at `i`, and ends there too.
- It refuses what the stdlib reads otherwise or refuses as well: NaN, Infinity and numbers too large for a float
  (the stdlib path raises `NotJSON` for them), lone surrogates (the stdlib makes a str of them), control
  characters, nesting past 1,024, anything not JSON. Refused, the element is read by the stdlib scanner, and
  orjson is not offered the rest of that body (a body written on one line is read as before).
- Integers outside 64 bits it reads as floats (the stdlib as ints): an element whose text holds a run of 19 or
  more digits anywhere is read by the stdlib scanner (found by C loops, a translation and a search: in an ASCII
  file's bytes 64 kB at a time, each part once, when an element in it is parsed, each element then offered to
  orjson as a view of the bytes, not copied; else element by element).
- Floats: orjson's parsers (yyjson, or serde_json with `float_roundtrip`) round correctly, as Python's
  `float()` does: the same double for every finite decimal text.
- Duplicate keys: the last value, at the first key's place, as the stdlib's dict does.
tests/test_elementjson.py holds both to this on edge cases and random documents.

A dataset with a typed decoder (`collectors.normalize.typed`) has each element offered to it first: it takes only
elements of Graph's shape, and reads no number, so the search for runs of digits is orjson's alone.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from . import compact

_DIGIT_MAP = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # digits -> "0", anything else -> " "
_RUN = b"0" * 19  # 2**63 has 19 digits: any integer orjson could read as a float has a run this long
_WS = " \t\r"
_CHUNK = 1 << 16  # bytes of a file searched at a time for long runs of digits


def _chunk_runs(data: bytes, chunk: int) -> list[int]:
    """Where a run of 19 digits starts in the `chunk`th `_CHUNK` bytes of `data`, every such place (a run of 20
    starts two), in order: the bytes after it that such a run reaches into are searched with it."""
    step = _CHUNK
    at = chunk * step
    part = data[at:at + step + len(_RUN) - 1].translate(_DIGIT_MAP)
    found = []
    k = part.find(_RUN)
    while 0 <= k < step:
        found.append(at + k)
        k = part.find(_RUN, k + 1)
    return found


class Elements:
    """orjson for the elements of one file's bodies (`rawjson._value_array`); `parse` gives (value, end) or
    None where the stdlib scanner is to read the element."""

    __slots__ = ("text", "view", "runs", "on", "typed", "many", "ends", "texts")

    def __init__(self, text: str, data: bytes, typed: Callable[[bytes | memoryview], Any] | None = None):
        self.text = text
        # offered each element first, as orjson would be: its value (a typed object), or None for orjson to parse it
        # (a dataset's decoder of Graph's shape, `collectors.normalize.typed`)
        self.typed = typed
        self.many = getattr(typed, "many", None)  # and the same for a whole array at once (`whole`)
        ascii_ = len(data) == len(text)  # character offsets are the bytes' too
        self.view = memoryview(data) if ascii_ else None  # an ASCII file's bytes: elements go to orjson as views
        # by chunk (`_CHUNK` bytes), where runs of 19 digits start in an ASCII file's bytes: each chunk searched when
        # an element in it is first parsed (a daily read parses few: `unparsed.Skipper`)
        self.runs: dict[int, list[int]] = {}
        self.on = True  # off for the rest of a body once orjson refused an element of it
        self.ends: dict[int, int] = {}  # a body written on one line: where its elements end (`collectors.compact`)
        self.texts: dict[int, Any] = {}  # and, in text that is not ASCII, their UTF-8 texts as msgspec made them

    def whole(self, at: int) -> tuple[list[Any], list[tuple[int, int]], int] | None:
        """The elements of the array whose `[` is at `at`, in a body written on one line as Graph sends it, decoded
        typed at once (`typed.many`) where each is one the typed decoder takes alone: their values, their (start, end)
        (`compact.spans`) and where the `]` is. None otherwise: each element is then parsed alone, as before. A
        large first export's 180,000 audit entries and 220,000 users, registration rows and decisions: ~1.5 us of
        calls each not made."""
        text, view = self.text, self.view
        if self.many is None or view is None:
            return None
        first = at + 1
        while text[first] in " \t":
            first += 1
        if text[first] != "{" or compact.opening(text, first) != at:
            return None
        placed = compact.spans(text, view, at)
        if placed is None:
            return None
        spans, close = placed
        values = self.many(view[at:close + 1])
        return None if values is None or len(values) != len(spans) else (values, spans, close)

    def _long_run(self, i: int, last: int) -> bool:
        """Whether a run of 19 digits starts in the ASCII file's bytes between `i` and `last` (both included)."""
        runs, step = self.runs, _CHUNK
        for chunk in range(i // step, last // step + 1):
            starts = runs.get(chunk)
            if starts is None:
                starts = runs[chunk] = _chunk_runs(self.view.obj, chunk)  # type: ignore[union-attr,arg-type]
            for start in starts:
                if i <= start <= last:
                    return True
        return False

    def parse(self, i: int) -> tuple[Any, int] | None:
        text = self.text
        if text[i] != "{":
            return None
        end = self.ends.get(i, -1)
        if end < 0:
            at = compact.opening(text, i)
            if at >= 0:  # the first element of a body written on one line, as Graph sends it
                self.texts = {}
                self.ends = compact.ends(text, self.view, at, self.texts)
                end = self.ends.get(i, -1)
            elif text[i - 1] == ",":  # a later one of such a body (the earlier ones read unparsed, `unparsed.Skipper`)
                end = compact.one(text, self.view, i)
        if end >= 0:
            return self._parsed(i, end, self.texts.get(i))
        end = self._line_end(i)
        if end < 0:
            return None
        parsed = self._parsed(i, end)
        if parsed is None and not self.on:  # refused: the line may hold more than the element
            end = compact.one(text, self.view, i)
            if end >= 0:
                self.on = True
                return self._parsed(i, end)
        return parsed

    def _parsed(self, i: int, end: int, made: Any = None) -> tuple[Any, int] | None:
        """The element at `i` parsed from the text up to `end` (`made`: its UTF-8 text, when msgspec made it): (value,
        end), or None where the stdlib is to read it (`on` turned off where orjson refused it)."""
        text, view = self.text, self.view
        raw: Any = made if made is not None else text[i:end].encode() if view is None else view[i:end]
        if self.typed is not None:  # first: it reads no number, so long runs of digits are nothing to it
            typed = self.typed(raw)
            if typed is not None:
                return typed, end
        if made is not None:
            raw = bytes(made)  # bytes' methods for the search below, and for orjson
        if view is None:
            if raw.translate(_DIGIT_MAP).find(_RUN) >= 0:  # a long integer, maybe: the stdlib's (C loops, ~2 us)
                return None
        else:
            last = end - len(_RUN)
            if last >= i and self._long_run(i, last):  # a long integer, maybe: the stdlib's
                return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.on = False
            return None
        return value, end

    def _line_end(self, i: int) -> int:
        """The end of the element at `i` if it is the rest of its line (less a trailing comma), as exports are
        written one element a line; -1 where nothing is left of the line."""
        text = self.text
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
                return -1
        return end
