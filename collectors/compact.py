"""Where the elements of a body written on one line end, found by msgspec (`ends`).

Graph sends each page as one line of compact JSON, `{"@odata.context":...,"value":[{...},{...},...]}`, and the live
collector writes it into the export as it came (`collectors.graph.writer`). The reader finds where an element ends
by its line (`elementjson.Elements`, `unparsed.LineCut`): that works for exports written one element a line (the
synthetic tenant's, the sample's) and not for these, whose every element went to the stdlib's scanner as a dict (a
large tenant's first export from a live collection: read in 11.7 s against 1.7 s, docs/benchmarks.md, round 24).

msgspec reads a whole array at once as raw texts (`list[msgspec.Raw]`: ~1 GB/s, nothing decoded), which gives each
element's length, so where each one starts and ends. These are candidates only, as a line is: the reader still parses
each element from exactly that text (a typed decoder, orjson or the stdlib), and a JSON value that fills a text
starting at `i` is the value the stdlib's `raw_decode` finds at `i`, ending where it does (`elementjson`). Where msgspec
refuses the array (NaN, a lone surrogate, nesting past its depth, anything that is not JSON), there are no candidates
and the reader goes on as before.
"""

from __future__ import annotations

import re

import msgspec

_RAWS = msgspec.json.Decoder(list[msgspec.Raw]).decode
_RAW = msgspec.json.Decoder(msgspec.Raw).decode
# msgspec's words for a value followed by more text; its byte is one past the first character after the value
_TRAILING = re.compile(r"trailing characters \(byte ([0-9]+)\)$")
_WS = " \t\n\r"
_WS_BYTES = b" \t\n\r"
_WINDOW = 1 << 12  # characters of a line that is not ASCII encoded at first for `one`


def opening(text: str, i: int) -> int:
    """Where the `[` is that the element at `i` follows on the same line (blanks between), else -1: the first element
    of a body written on one line. An export written one element a line has a line break before each."""
    at = i - 1
    while at >= 0 and text[at] in " \t":
        at -= 1
    return at if at >= 0 and text[at] == "[" else -1


def ends(text: str, view: memoryview | None, at: int, texts: dict[int, msgspec.Raw] | None = None) -> dict[int, int]:
    """{start: end} of each element of the array whose `[` is at `at` (character offsets in `text`; `view`: the text's
    bytes when they are its characters, ASCII), or {} where msgspec does not read the array. `texts`, for text that
    is not ASCII: filled with {start: the element's UTF-8 text}, which msgspec made (not encoded again to parse it)."""
    placed = spans(text, view, at, texts)
    return dict(placed[0]) if placed is not None else {}


def spans(text: str, view: memoryview | None, at: int, texts: dict[int, msgspec.Raw] | None = None
          ) -> tuple[list[tuple[int, int]], int] | None:
    """`ends` as the (start, end) of each element in order, and where the array's `]` is; None where msgspec does
    not read the array."""
    raws = _raws(text, view, at)
    if raws is None:
        return None
    try:
        return _placed(text, view, at, raws, texts)
    except IndexError:  # the text ends before msgspec's array does: not the text it read
        return None


def _placed(text: str, view: memoryview | None, at: int, raws: list[msgspec.Raw],
            texts: dict[int, msgspec.Raw] | None) -> tuple[list[tuple[int, int]], int] | None:
    found: list[tuple[int, int]] = []
    add = found.append
    ws = _WS
    pos = at + 1
    while text[pos] in ws:
        pos += 1
    keep = texts is not None and view is None
    for raw in raws:
        end = pos + (len(raw) if view is not None else len(str(raw, "utf-8")))
        add((pos, end))
        if keep:
            texts[pos] = raw  # type: ignore[index]
        pos = end
        while text[pos] in ws:
            pos += 1
        if text[pos] == ",":
            pos += 1
            while text[pos] in ws:
                pos += 1
    return (found, pos) if text[pos] == "]" else None  # where msgspec's array ends, the walk must end too


def _raws(text: str, view: memoryview | None, at: int) -> list[msgspec.Raw] | None:
    """The array's elements as raw texts: the text up to the last `]` of the line first (a page of Graph's, `value`
    its last member), else up to where msgspec says the array is followed by more (of the rest of the text in ASCII,
    of the line otherwise: its bytes are made)."""
    line = text.find("\n", at)
    line = len(text) if line < 0 else line
    close = text.rfind("]", at, line)
    if close > at:
        try:
            return _RAWS(view[at:close + 1] if view is not None else text[at:close + 1])
        except (msgspec.DecodeError, RecursionError):
            pass
    part = view[at:] if view is not None else text[at:line].encode()
    size = _size(part, False)  # the array's bytes, where msgspec reads one there
    if size is None:
        return None
    try:
        return _RAWS(part[:size])
    except (msgspec.DecodeError, RecursionError):
        return None


def one(text: str, view: memoryview | None, i: int) -> int:
    """The end of the element at `i` in a body written on one line, when it is not the first (whose array `ends`
    gives all of them): where msgspec says it is followed by more of its line; -1 where msgspec does not read it, or
    where the element is the rest of its line (`elementjson`'s own candidate). msgspec stops right after the
    element, so this is as long as the element is; text that is not ASCII is encoded in windows of growing width
    (4 kB, then 64 kB, then the rest of the line), not the whole rest of its line for each element."""
    line = text.find("\n", i)
    line = len(text) if line < 0 else line
    if view is not None:
        size = _size(view[i:line], True)
        return -1 if size is None else i + size
    width = _WINDOW
    while True:
        stop = min(line, i + width)
        part = text[i:stop].encode()
        size = _size(part, stop == line)
        if size is not None:
            return i + len(part[:size].decode())  # the value ends at an ASCII character: a whole UTF-8 sequence
        if stop == line:
            return -1
        width *= 16


def _size(part: bytes | memoryview, whole: bool) -> int | None:
    """The bytes of the JSON value `part` begins with (less blanks after it), found by msgspec's word for a value
    followed by more; None where msgspec does not read it (maybe cut short: a wider `part` may) or, `whole`, where the
    value fills `part`. One skim of the value, nothing decoded (`_raws`, `one`)."""
    try:
        _RAW(part)
        size = len(part)  # the value fills it: the element ends where `part` does, unless that is the line's end
        if whole:
            return None
    except msgspec.DecodeError as exc:
        more = _TRAILING.search(str(exc))
        if more is None:
            return None
        size = int(more.group(1)) - 1
    except RecursionError:
        return None
    while size > 0 and part[size - 1] in _WS_BYTES:
        size -= 1
    return size
