"""Request chains: one request and every `@odata.nextLink` after it, as raw pages.

The nextLink is followed verbatim until it is absent — empty pages included (Graph sends empty
pages that still carry a nextLink; the SDK's PageIterator would stop there). Per-parent requests
(one per group, user, review) can be grouped twenty at a time into JSON `$batch` requests; a
sub-response carries its own status, and the throttled ones are sent again after their
Retry-After, because the SDK's retry middleware only sees the batch's own 200.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from pimtrail.collectors.exportdir import BODY_SPEC, load_with_raw

from .client import GraphHttp, RetryRecord
from .errors import GraphError

BATCH_LIMIT = 20  # Graph's maximum requests per $batch
RETRY_STATUSES = {429, 503, 504}
_BATCH_SPEC = {"object": {"responses": {"array": {"object": {"body": BODY_SPEC}}}}}

OnPage = Callable[[int], None]  # called with the page's row count as each page arrives


@dataclass
class FetchedPage:
    parent: str
    request: str  # as sent, relative to the host: "/v1.0/users?$select=..."
    raw: bytes  # the body exactly as received
    body: dict[str, Any]  # parsed; emptied once nothing needs it (the raw bytes stay)
    rows: int = -1

    def __post_init__(self) -> None:
        if self.rows < 0:
            self.rows = len(self.body.get("value", []))


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


async def follow(http: GraphHttp, first: FetchedPage, on_page: OnPage,
                 max_pages: int = 100_000) -> list[FetchedPage]:
    """`first` and the pages its nextLinks lead to, in order."""
    pages, seen = [first], set()
    on_page(first.rows)
    link = first.body.get("@odata.nextLink")
    while link:
        if link in seen or len(pages) >= max_pages:
            raise GraphError(200, "NextLinkLoop", f"nextLink does not advance: {link[:200]}")
        seen.add(link)
        raw = await http.get(link)
        page = FetchedPage(first.parent, _relative(link), raw, _parse(raw, link))
        pages.append(page)
        on_page(page.rows)
        link = page.body.get("@odata.nextLink")
    return pages


async def chain(http: GraphHttp, request: str, parent: str, on_page: OnPage) -> list[FetchedPage]:
    """GET `request` ("/v1.0/...", "/beta/...") and follow it to its last page."""
    raw = await http.get(http.url(request))
    return await follow(http, FetchedPage(parent, request, raw, _parse(raw, request)), on_page)


async def batched_firsts(http: GraphHttp, requests: list[tuple[str, str]], size: int = BATCH_LIMIT
                         ) -> dict[str, FetchedPage | GraphError]:
    """The first page of each (parent, request), `size` per $batch (v1.0 requests only).
    Returns per parent either its page or the error Graph gave for it. Throttled
    sub-requests are sent again, as the SDK would: after the longest Retry-After (or a
    back-off), at most `max_retries` times."""
    settings = http.settings
    out: dict[str, FetchedPage | GraphError] = {}
    pending = list(requests)
    for attempt in range(settings.max_retries + 1):
        retry: list[tuple[str, str]] = []
        waits: list[tuple[str, int, float | None]] = []
        batches = [pending[i:i + size] for i in range(0, len(pending), size)]
        for part, results in zip(batches, await asyncio.gather(*(_one_batch(http, b) for b in batches))):
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


async def _one_batch(http: GraphHttp, part: list[tuple[str, str]]
                     ) -> list[tuple[str, FetchedPage | GraphError, float | None]]:
    prefix = http.version_prefix
    payload = {"requests": [
        {"id": str(n), "method": "GET", "url": http.url(request)[len(http.root) + len(prefix):]}
        for n, (_, request) in enumerate(part)]}
    raw = await http.post_json(f"{http.root}{prefix}/$batch", json.dumps(payload).encode())
    try:
        content, raws = load_with_raw(raw.decode("utf-8"), _BATCH_SPEC)
        responses = {str(r["id"]): r for r in content["responses"]}
    except (ValueError, IndexError, KeyError, TypeError):
        raise GraphError(200, "UnexpectedBody", "a $batch answer that is not a batch") from None
    results = []
    for n, (parent, request) in enumerate(part):
        sub = responses.get(str(n))
        if sub is None:
            results.append((parent, GraphError(None, "BatchIncomplete", f"no answer for {request}"), None))
            continue
        status, body = int(sub.get("status", 0)), sub.get("body")
        if 200 <= status < 300 and isinstance(body, dict):
            text = raws.get(id(body))
            page_raw = text.encode() if text is not None else json.dumps(body).encode()
            results.append((parent, FetchedPage(parent, request, page_raw, _parse(page_raw, request)), None))
            continue
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        headers = {k.lower(): v for k, v in (sub.get("headers") or {}).items()}
        retry_after = headers.get("retry-after")
        results.append((parent, GraphError(status, error.get("code") or "UnknownError",
                                           error.get("message") or ""),
                        float(retry_after) if str(retry_after or "").isdigit() else None))
    return results
