"""Request chains: one request and every `@odata.nextLink` after it, as raw pages.

The nextLink is followed verbatim until it is absent — empty pages included (Graph sends empty
pages that still carry a nextLink; the SDK's PageIterator would stop there). Per-parent requests
(one per group, user, review) can be grouped twenty at a time into JSON `$batch` requests; a
sub-response carries its own status, and the throttled ones are sent again after their
Retry-After, because the SDK's retry middleware only sees the batch's own 200.

Only the pages whose objects the collection itself reads (parents, tenant id) are parsed. The
others are kept as the bytes Graph sent: their nextLink is read from the page's text
(pagetext.next_link: Graph writes it before or after `value`), and their rows are counted when
the export is read back. A 1.3 MB audit page takes ~15 ms to parse and ~0.1 ms to scan, and
while a page is parsed no other answer is read. A chain's next request leaves as soon as the
head of the current answer names it (`_Chain`), and a chain's later pages wait for a free
request slot ahead of first requests (client.Gate): the longest chain is the run's critical path.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from .client import Baton, GraphHttp, RetryRecord
from .errors import GraphError
from .pagetext import NEXT_LINK, Unclear, ids, next_link

BATCH_LIMIT = 20  # Graph's maximum requests per $batch
RETRY_STATUSES = {429, 503, 504}


# How a page is read (see `read_page`).
PARSE = "parse"  # parsed: the collection reads its objects
IDS = "ids"  # only the ids it holds are taken from its text (the users list: 100,000 users)
TEXT = "text"  # only its nextLink is taken from its text


@dataclass(eq=False)
class FetchedPage:
    parent: str
    request: str  # as sent, relative to the host: "/v1.0/users?$select=..."
    raw: bytes  # the body exactly as received; emptied once it is in the export
    body: dict[str, Any] | None = None  # parsed (PARSE, and every page of a $batch); else None
    rows: int | None = None  # None: not counted here (the export's read-back counts them)
    next_link: str | None = None
    ids: list[str] | None = None  # IDS: every "id" member's value in the page

    def __post_init__(self) -> None:
        if self.body is not None:
            if self.rows is None:
                self.rows = len(self.body.get("value", []))
            if self.next_link is None:
                self.next_link = _link_of(self.body)


def _link_of(body: dict[str, Any]) -> str | None:
    link = body.get(NEXT_LINK)
    return link if isinstance(link, str) and link else None


OnPage = Callable[[FetchedPage], None]  # called with each page as it arrives, in chain order


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _parse(raw: bytes, request: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise GraphError(200, "UnexpectedBody", f"not JSON: the answer to {request}") from None
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise GraphError(200, "UnexpectedBody", f"no 'value' list in the answer to {request}")
    return body


def read_page(raw: bytes, request: str, parent: str, how: str = PARSE) -> FetchedPage:
    """One page as received, read `how` (PARSE, IDS or TEXT). A page read as text whose text
    is not laid out as Graph lays it out is parsed after all (and then only counted)."""
    if how != PARSE:
        try:
            link = next_link(raw)
        except (Unclear, ValueError):
            body = _parse(raw, request)
            return FetchedPage(parent, request, raw, rows=len(body["value"]), next_link=_link_of(body),
                               ids=[str(item["id"]) for item in body["value"] if isinstance(item, dict)
                                    and item.get("id")] if how == IDS else None)
        # IDS: a superset of the objects' ids (a nested object's "id" too): the users list only
        # filters which principals' FIDO2 keys are read, and a user's members hold no other id.
        return FetchedPage(parent, request, raw, next_link=link, ids=ids(raw) if how == IDS else None)
    return FetchedPage(parent, request, raw, _parse(raw, request))


class _Chain:
    """One request chain, read with its next request on the way as soon as it is known: the
    head of the answer being read names the next page (`GraphHttp.get(on_next_link=...)`),
    which is then asked for while this body is still arriving and being handed on. At most one
    request runs ahead of the one being read; a nextLink only known from the end of a body is
    asked for when the body is complete."""

    def __init__(self, http: GraphHttp, parent: str, on_page: OnPage, how: str, max_pages: int):
        self.http, self.parent, self.on_page, self.how, self.max_pages = http, parent, on_page, how, max_pages
        self.count = 0  # pages handed on
        self.seen: set[str] = set()
        self.reading = ""  # the URL whose answer is awaited
        self.heads: dict[str, str] = {}  # URL -> the nextLink its answer's head named
        self.ahead: dict[str, asyncio.Task[bytes]] = {}
        self.batons: list[Baton] = []  # slots handed on to the pages asked for ahead

    def _request(self, url: str, depth: int, via_adapter: bool = False, baton: Baton | None = None
                 ) -> asyncio.Task[bytes]:
        def early(link: str, handed: Baton) -> None:
            self.heads[url] = link
            # the answer's slot goes to the request for its next page if that is asked for now,
            # else back to the gate
            if not self._ahead(handed if url == self.reading else None):
                handed.drop()

        return asyncio.ensure_future(self.http.get(url, priority=-depth, on_next_link=early,
                                                   via_adapter=via_adapter, baton=baton))

    def _ahead(self, baton: Baton | None = None) -> bool:
        """Ask for the page the head of the answer being read named, if not asked for yet; with
        `baton`, on that answer's slot. True when `baton` went with the request."""
        link = self.heads.get(self.reading)
        if link and not self.ahead and link not in self.seen and link != self.reading \
                and self.count + 1 < self.max_pages:
            if baton is not None:
                self.batons.append(baton)
            self.ahead[link] = self._request(link, self.count + 1, baton=baton)
            return baton is not None
        return False

    def _hand_on(self, page: FetchedPage) -> None:
        self.count += 1
        self.on_page(page)

    async def run(self, first: FetchedPage | None, request: str = "") -> int:
        try:
            if first is None:  # the chain's first request: `request` ("/v1.0/...", "/beta/...")
                self.reading = url = self.http.url(request)
                first = read_page(await self._request(url, 0, True), request, self.parent, self.how)
                self.heads.pop(url, None)
            link = first.next_link
            self._hand_on(first)
            while link:
                if link in self.seen or self.count >= self.max_pages:
                    raise GraphError(200, "NextLinkLoop", f"nextLink does not advance: {link[:200]}")
                self.seen.add(link)
                self.reading = link
                task = self.ahead.pop(link, None) or self._request(link, self.count)
                self._ahead()  # its head may have named the next page already
                page = read_page(await task, _relative(link), self.parent, self.how)
                self.heads.pop(link, None)
                link = page.next_link
                self._hand_on(page)
        finally:
            for task in self.ahead.values():  # a chain that failed, or a head that misled
                task.cancel()
            await asyncio.gather(*self.ahead.values(), return_exceptions=True)
            for baton in self.batons:  # handed to a request that never reached the wire
                baton.drop()
        return self.count


async def follow(http: GraphHttp, first: FetchedPage, on_page: OnPage, how: str = PARSE,
                 max_pages: int = 100_000) -> int:
    """Hand `first` and the pages its nextLinks lead to to `on_page`, in order. Returns the
    number of pages."""
    return await _Chain(http, first.parent, on_page, how, max_pages).run(first)


async def chain(http: GraphHttp, request: str, parent: str, on_page: OnPage, how: str = PARSE) -> int:
    """GET `request` ("/v1.0/...", "/beta/...") and follow it to its last page."""
    return await _Chain(http, parent, on_page, how, 100_000).run(None, request)


async def batched_firsts(http: GraphHttp, requests: list[tuple[str, str]], size: int = BATCH_LIMIT,
                         digest: Callable[[FetchedPage], None] | None = None, how: str = PARSE,
                         limit: asyncio.Semaphore | None = None) -> dict[str, FetchedPage | GraphError]:
    """The first page of each (parent, request), `size` per $batch (v1.0 requests only).
    Returns per parent either its page (read `how`, as `read_page` does; `digest` is given each
    page as soon as its batch is read, to drop what is not needed) or the error Graph gave
    for it. Throttled sub-requests are sent again, as the SDK would: after the longest
    Retry-After (or a back-off), at most `max_retries` times. `limit`: how many `$batch`
    requests are made ready at once (a payload, a token, the middleware): at most
    `concurrency` go on the wire anyway, and 261 at once - the FIDO2 keys of 5,200 users -
    held the event loop for a quarter of a second."""
    settings = http.settings

    async def one(part: list[tuple[str, str]], via_adapter: bool
                  ) -> list[tuple[str, FetchedPage | GraphError, float | None]]:
        if limit is None:
            return await _one_batch(http, part, digest, how, via_adapter=via_adapter)
        async with limit:
            return await _one_batch(http, part, digest, how, via_adapter=via_adapter)

    out: dict[str, FetchedPage | GraphError] = {}
    pending = list(requests)
    for attempt in range(settings.max_retries + 1):
        retry: list[tuple[str, str]] = []
        waits: list[tuple[str, int, float | None]] = []
        batches = [pending[i:i + size] for i in range(0, len(pending), size)]
        # the dataset's first request through the SDK's request adapter, the others straight (client.py)
        sent = [one(b, via_adapter=attempt == n == 0) for n, b in enumerate(batches)]
        for part, results in zip(batches, await asyncio.gather(*sent)):
            requested = dict(part)
            for parent, outcome, retry_after in results:
                if isinstance(outcome, GraphError) and outcome.status in RETRY_STATUSES \
                        and attempt < settings.max_retries:
                    retry.append((parent, requested[parent]))
                    waits.append((requested[parent], outcome.status, retry_after))
                else:
                    out[parent] = outcome
        if not retry:
            break
        wait = max((w if w is not None else 2.0 ** attempt) for _, _, w in waits) * settings.time_scale
        for request, status, retry_after in waits:
            settings.retries.append(RetryRecord(request, status, None if retry_after is None
                                                else f"{retry_after:g}", attempt + 1, wait))
        await asyncio.sleep(wait)
        pending = retry
    return out


async def _one_batch(http: GraphHttp, part: list[tuple[str, str]],
                     digest: Callable[[FetchedPage], None] | None = None, how: str = PARSE,
                     via_adapter: bool = False) -> list[tuple[str, FetchedPage | GraphError, float | None]]:
    prefix = http.version_prefix
    mark = secrets.token_hex(6)  # the sub-requests' ids: "<mark>-<n>", found in the answer's text
    payload = {"requests": [
        {"id": f"{mark}-{n}", "method": "GET", "url": http.url(request)[len(http.root) + len(prefix):]}
        for n, (_, request) in enumerate(part)]}
    raw = await http.post_json(f"{http.root}{prefix}/$batch", json.dumps(payload).encode(),
                               via_adapter=via_adapter)
    subs = _cut(raw, mark) if how != PARSE else None
    if subs is None:  # parsed whole, one sub-response at a time
        subs = {}
        turn = time.monotonic() + TURN
        try:
            for sub, text in _sub_responses(raw.decode("utf-8")):
                subs[str(sub["id"])] = sub, (text.encode() if text is not None else None)
                if time.monotonic() > turn:  # a 20-review batch answer is ~8 MB: let other answers in
                    await asyncio.sleep(0)
                    turn = time.monotonic() + TURN
        except (ValueError, IndexError, KeyError, TypeError):
            raise GraphError(200, "UnexpectedBody", "a $batch answer that is not a batch") from None
    results = []
    for n, (parent, request) in enumerate(part):
        sub, text = subs.get(f"{mark}-{n}", (None, None))
        if sub is None:
            results.append((parent, GraphError(None, "BatchIncomplete", f"no answer for {request}"), None))
            continue
        status = int(sub.get("status", 0))
        if 200 <= status < 300 and text is not None:
            page = read_page(text, request, parent, how)
            if digest is not None:
                digest(page)
            results.append((parent, page, None))
            continue
        body = sub.get("body")
        if body is None and text is not None:
            body = json.loads(text)
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        headers = {k.lower(): v for k, v in (sub.get("headers") or {}).items()}
        retry_after = headers.get("retry-after")
        if 200 <= status < 300:
            error = {"code": "UnexpectedBody", "message": f"no body in the answer to {request}"}
        results.append((parent, GraphError(status, error.get("code") or "UnknownError",
                                           error.get("message") or ""),
                        float(retry_after) if str(retry_after or "").isdigit() else None))
    return results


# a sub-response's start: its id, "<mark>-<n>" (the mark: `secrets.token_hex(6)`). One pattern for every mark, the
# mark compared after: a pattern per batch was compiled per batch (~0.9 ms each, 344 batches of a large tenant, in
# the collector's one busy thread)
_MARK = re.compile(rb'\{[ \t\n\r]*"id"[ \t\n\r]*:[ \t\n\r]*"([^"\\]*)-[0-9]+"')
ENVELOPE = 8192  # bytes of a sub-response before its body: id, status, headers


def _cut(raw: bytes, mark: str) -> dict[str, tuple[dict[str, Any], bytes]] | None:
    """The sub-responses of a `$batch` answer without parsing their bodies: each one starts
    with its id (`{"id":"<mark>-<n>"`: the mark is this batch's, so it is nowhere else in the
    text - a quote inside a JSON string is escaped) and ends where the next one starts, and its
    `body` comes last, after `status` and `headers` (as Graph and the emulator write them). Each
    envelope is parsed; each body is cut out byte for byte. None when the answer is laid out
    otherwise: the caller parses it instead."""
    wanted = mark.encode()
    starts = [m.start() for m in _MARK.finditer(raw) if m.group(1) == wanted]
    end = len(raw.rstrip()) - 1  # the answer's closing brace
    array = raw.rfind(b"]", 0, end)  # the responses' closing bracket
    if not starts or raw[end:end + 1] != b"}" or array < 0 or raw[array + 1:end].strip():
        return None
    out: dict[str, tuple[dict[str, Any], bytes]] = {}
    for start, after in zip(starts, starts[1:] + [array]):
        close = raw.rfind(b"}", start, after)  # the sub-response's closing brace
        if close < 0 or raw[close + 1:after].strip() != (b"," if after != array else b""):
            return None
        head = raw[start:min(close, start + ENVELOPE)].decode("ascii", "replace")  # a char a byte
        try:
            sub, at = _envelope(head)
        except (ValueError, IndexError):
            return None
        body = raw[start + at:close].rstrip()
        if not (body.startswith(b"{") and body.endswith(b"}")) or not {"id", "status", "headers"} <= set(sub):
            return None
        out[str(sub["id"])] = sub, body
    return out


def _envelope(head: str) -> tuple[dict[str, Any], int]:
    """A sub-response's members before `body`, and where the body starts."""
    sub: dict[str, Any] = {}
    i = _open(head, 0, "{")
    while True:
        key, i = _key(head, i)
        if key == "body":
            return sub, i
        sub[key], i = _DECODER.raw_decode(head, i)
        i = _next(head, i, "}")
        if head[i] == "}":
            raise ValueError("no body")


TURN = 0.005  # seconds of parsing a $batch answer before the event loop gets a turn
_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _sub_responses(text: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Each sub-response of a `$batch` answer (`{"responses": [...]}`) in turn, parsed, with the
    exact text of its `body` (the receipt), or None when it has none. Raises ValueError (or
    IndexError) when the text is not such an answer."""
    i, found = _open(text, 0, "{"), False
    while text[i] != "}":
        key, i = _key(text, i)
        if key == "responses" and text[i] == "[":
            found = True
            i = _WS.match(text, i + 1).end()
            while text[i] != "]":
                sub, body, i = _sub_response(text, i)
                yield sub, body
                i = _next(text, i, "]")
            i += 1
        else:
            _, i = _DECODER.raw_decode(text, i)
        i = _next(text, i, "}")
    if not found or text[i + 1:].strip():
        raise ValueError("not a $batch answer")


def _sub_response(text: str, i: int) -> tuple[dict[str, Any], str | None, int]:
    sub: dict[str, Any] = {}
    body = None
    i = _open(text, i, "{")
    while text[i] != "}":
        key, i = _key(text, i)
        start = i
        sub[key], i = _DECODER.raw_decode(text, i)
        if key == "body":
            body = text[start:i]
        i = _next(text, i, "}")
    return sub, body, i + 1


def _open(text: str, i: int, bracket: str) -> int:
    i = _WS.match(text, i).end()
    if text[i] != bracket:
        raise ValueError(f"expected {bracket}")
    return _WS.match(text, i + 1).end()


def _key(text: str, i: int) -> tuple[str, int]:
    """A member's key and where its value starts."""
    key, i = _DECODER.raw_decode(text, i)
    i = _WS.match(text, i).end()
    if not isinstance(key, str) or text[i] != ":":
        raise ValueError("expected a key")
    return key, _WS.match(text, i + 1).end()


def _next(text: str, i: int, close: str) -> int:
    """Past the comma after a member or element, or at the closing bracket."""
    i = _WS.match(text, i).end()
    if text[i] == ",":
        return _WS.match(text, i + 1).end()
    if text[i] != close:
        raise ValueError(f"expected , or {close}")
    return i
