"""Reading a daily export without parsing what did not change (docs/architecture.md, "Reading what did
not change").

Most of a big dataset is the same from one day to the next: of 100,000 users a few hundred change. The
history knows the elements its newest snapshot held (`pimtrail.model.Known`: per dataset, their digests
and lengths in order). Reading the next export, each element of such a dataset is first compared with
the element expected at its place (the one after the last recognised, or the one after that when one
changed or went): if the text of that length there has the same digest, it is the same element and is
not parsed (`SKIPPED` stands in the body's `value`); its facts are the open facts naming it, which the
store keeps (`pimtrail.store.ingest`). Anything else is parsed as usual, and when its digest names
another known element the comparison continues after that one. A text the snapshot held twice is always
parsed; an element no open fact names (its fact is another element's too) makes the store refuse the
read (`receipts.Unrecognised`), and the export is read again in full.

Whether an element is recognised never changes what is stored: a recognised element's text is
byte-identical to one the history checked and normalised before (same 16-byte BLAKE2b, as the store's
own comparison), and a JSON object is over at its closing brace, so the array is cut where a full
parse would cut it. Only the time spent reading differs.

`LineCut` is another matter: it cuts a tenant's first audit log at the writer's line ends without knowing the
elements, for a worker that parses them (`CollectedSnapshot.deferred`). Its cut is only a guess until the worker's
full parse confirms it (`hashing.cuts_digest`); when the guess makes the rest of the file unreadable, the file is
read in full (`exportdir._load_file_with_raw`), and when it differs from the worker's, the pages are parsed here.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from pimtrail.model import Known
from pimtrail.store.elements import digest, strip

from . import compact


class Skipper:
    """The known elements of one dataset, in the order the previous snapshot held them; `end` says
    whether the element starting at an offset is the next of them (and where it ends)."""

    def __init__(self, digests: list[bytes], lengths: list[int], numbers: list[int], volatile: tuple[str, ...]):
        self.digests, self.lengths, self.numbers = digests, lengths, numbers
        self.key = f'"{volatile[0]}":' if volatile else None
        seen = dict(zip(digests, range(len(digests))))  # the last position of each digest
        twice: set[bytes] = set()
        if len(seen) != len(digests):  # some text occurs twice (rare): which ones
            twice = {dig for dig, count in Counter(digests).items() if count > 1}
            seen = {dig: p for dig, p in seen.items() if dig not in twice}
        self.position = seen  # resync on unique ones
        self.twice = twice  # never recognised unparsed: which one of them it is would be a guess
        self.cursor = 0
        self.kept: list[int] = []  # numbers of the elements recognised, in order
        self.found: list[tuple[bytes, str | None]] = []  # and their digests and volatile values (`Page.skipped`)
        self._text: str | None = None
        self._view: memoryview | None = None

    @classmethod
    def of(cls, known: Known | None, dataset: str, volatile: tuple[str, ...]) -> "Skipper | None":
        entry = known.elements.get(dataset) if known is not None else None
        if entry is None or len(volatile) > 1:
            return None
        return cls(*entry, volatile)

    def end(self, text: str, i: int) -> int:
        """The end of the element starting at `i` if it is the next known one (or the one after it),
        else -1 (parse it, then call `parsed`)."""
        if text is not self._text:
            self.bind(text)
        cursor = self.cursor
        for candidate in (cursor, cursor + 1):
            if candidate >= len(self.lengths):
                return -1
            dig = self.digests[candidate]
            if dig in self.twice:
                continue
            end, value = self._match(text, i, self.lengths[candidate], dig)
            if end >= 0:
                self.cursor = candidate + 1
                self.kept.append(self.numbers[candidate])
                self.found.append((dig, value))
                return end
        return -1

    def bind(self, text: str, data: bytes | None = None) -> None:
        """Hash slices of the file's bytes where they lie (characters are bytes in ASCII text). `data`: the
        text's UTF-8 bytes when the caller has them (the file as read), else they are made here."""
        if data is None:
            data = text.encode()
        self._text, self._view = text, memoryview(data) if len(data) == len(text) else None

    def _hash(self, text: str, start: int, end: int) -> Any:
        view = self._view
        return hashlib.blake2b(view[start:end] if view is not None else text[start:end].encode(), digest_size=16)

    def _match(self, text: str, i: int, length: int, dig: bytes) -> tuple[int, str | None]:
        """(end, volatile value) of the element at `i` if it is the known one of that `length` and
        digest; end -1 otherwise."""
        key = self.key
        if key is not None:
            at = text.find(key, i, i + length)
            if at >= 0:  # its volatile value lies between `start` and `close`, cut out of the known text
                start = at + len(key)
                close = text.find('"', start + 1) if text.startswith('"', start) else -1
                if close < 0 or text.find("\\", start, close) >= 0:
                    return -1, None  # not a plain string: left to the parser (and `strip`)
                end = i + length + close + 1 - start
                if text[end - 1:end] != "}":
                    return -1, None
                hashed = self._hash(text, i, start)
                view = self._view
                hashed.update(view[close + 1:end] if view is not None else text[close + 1:end].encode())
                return (end, text[start:close + 1]) if hashed.digest() == dig else (-1, None)
        end = i + length
        if text[end - 1:end] != "}":
            return -1, None
        return (end, None) if self._hash(text, i, end).digest() == dig else (-1, None)

    def parsed(self, text: str, i: int, end: int) -> None:
        """An element that was parsed: if it is a known one elsewhere, carry on after it."""
        element = text[i:end]
        if self.key is not None:
            element = strip(element, (self.key[1:-2],))[0]
        position = self.position.get(digest(element))
        if position is not None:
            self.cursor = position + 1


class LineCut:
    """A body's elements cut where the export's writer ends them, without parsing them (`SKIPPED` stands in for
    each): an element is a line of its own, `{...},` or, the last, `{...}` before a line beginning with `]`; in a
    body written on one line, as Graph sends it, where msgspec reads its elements to end (`collectors.compact`).
    Anything else is parsed as usual. For the audit log of a tenant's first snapshot, which a worker parses
    meanwhile (`CollectedSnapshot.deferred`): its events are taken only if its full parse cut the pages where this
    did (`hashing.cuts_digest`), else the pages are parsed here; a cut after which the file does not parse has the
    file read in full. `Skipper`'s interface: nothing is `kept`."""

    def __init__(self) -> None:
        self.kept: list[int] = []
        self.found: list[tuple[bytes, str | None]] = []
        self.ends: dict[int, int] = {}  # a body written on one line: where its elements end (`collectors.compact`)
        self._view: memoryview | None = None

    def bind(self, text: str, data: bytes | None = None) -> None:
        self._view = memoryview(data) if data is not None and len(data) == len(text) else None

    def end(self, text: str, i: int) -> int:
        if text[i] != "{":
            return -1
        end = self.ends.get(i, -1)
        if end >= 0:
            return end
        at = compact.opening(text, i)
        if at >= 0:  # the first element of a body written on one line, as Graph sends it
            self.ends = compact.ends(text, self._view, at)
            return self.ends.get(i, -1)
        line = text.find("\n", i)
        if line < 0:
            return -1
        last = text[line - 1]
        if last == ",":
            return line - 1 if text[line - 2] == "}" else -1
        return line if last == "}" and text.startswith("]", line + 1) else -1

    def whole(self, text: str, at: int) -> tuple[list[tuple[int, int]], int] | None:
        """A body's `value` array whose `[` is at `at`, written on one line as Graph sends it: each element's (start,
        end) and where its `]` is, all found at once (`compact.spans`), when each element is an object; else None
        (`end` then cuts it element by element). The same cut `end` makes, without a call per element (a large first
        audit log's 180,000: ~0.3 s)."""
        i = at + 1
        while text[i] in " \t\r":
            i += 1
        if text[i] != "{":
            return None
        placed = compact.spans(text, self._view, at)
        if placed is None or not all(text[start] == "{" for start, _ in placed[0]):
            return None
        return placed

    def parsed(self, text: str, i: int, end: int) -> None:
        pass
