"""The Graph emulator: a local HTTP server that answers like Microsoft Graph from an export directory.

Server-side paging with absolute `@odata.nextLink`s (empty pages that still carry one, when
asked), `$batch`, Graph's error bodies, and faults injected per dataset. Every request is logged
(never its token) so tests can assert what the collector did: retries, waits, filters, batches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pimtrail.timeutil import parse_iso

from pimtrail.collectors.datasets import BY_NAME, USERS_PER_REQUEST, Parent

from .faults import Behaviour, Fault, error_body
from .routes import Match, parse_query, resolve
from .tenant import Chain, Tenant, load_tenant

BATCH = "$batch"
MAX_BATCH = 20  # Graph's limit of requests in one $batch
# List users, "Optional query parameters": "When `signInActivity` is selected or filtered on, the maximum page size is
# 500" (microsoft-graph-docs-contrib PR #9591, merged 3 July 2025, on api-reference/beta/api/user-list.md; the cap
# was 120 from April 2023, microsoft-graph-docs PR #20842, then 999 from May 2023, PR #21132)
SIGN_IN_PAGE_CAP = 500


@dataclass(frozen=True)
class LoggedRequest:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    query: str  # decoded
    dataset: str | None
    parent: str
    page: int  # page number within its chain (0 = the first request)
    status: int
    retry_after: int | None  # the Retry-After the emulator answered with
    retry_attempt: int  # the client's Retry-Attempt header (0 = a first try)
    batch: str | None  # the request's id inside its $batch, if it came in one
    in_batch: int | None  # which $batch (0 = the first the emulator received)
    authorized: bool
    body_sha256: str  # of the body as sent (inside a $batch: of the sub-response's body)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @cached_property
    def data(self) -> bytes:
        """The body as sent: compact JSON, like Graph."""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


def _token(page: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{page}:{offset}".encode()).decode().rstrip("=")


def _has_bearer(headers: Any) -> bool:
    value = str(headers.get("Authorization") or "")
    return value.startswith("Bearer ") and len(value) > len("Bearer ")


def _untoken(token: str) -> tuple[int, int]:
    page, offset = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
    return int(page), int(offset)


class Emulator:
    """`with Emulator(export_dir) as graph:` serves on 127.0.0.1; `graph.base_url` is the v1.0 root."""

    def __init__(self, export_dir: Path | str, *, page_size: int = 100, host: str = "127.0.0.1",
                 port: int = 0, behaviours: dict[str, Behaviour] | None = None, absent_empty: bool = False):
        """`absent_empty`: answer an empty collection for a dataset the export does not hold
        (as a tenant without that data would); by default a 404, so that a live collection
        through the emulator misses exactly what an offline read of the export misses."""
        self.tenant: Tenant = load_tenant(Path(export_dir))
        self.page_size = page_size
        self.absent_empty = absent_empty
        self.behaviours: dict[str, Behaviour] = dict(behaviours or {})
        self.log: list[LoggedRequest] = []
        self.in_flight = 0  # HTTP requests being answered right now
        self.max_in_flight = 0  # the most at once: shows the client's concurrency bound
        self._batches = 0
        self._filtered: dict[tuple[str, str, str], Chain] = {}  # see `_since`
        self._lock = threading.Lock()
        self._server = _Server((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1.0"

    def start(self) -> "Emulator":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="graph-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration and log --------------------------------------------------------------
    def behaviour(self, dataset: str) -> Behaviour:
        """The (mutable) behaviour of one dataset, or of "$batch" itself."""
        with self._lock:
            return self.behaviours.setdefault(dataset, Behaviour())

    def inject(self, dataset: str, *faults: Fault) -> None:
        self.behaviour(dataset).faults.extend(faults)

    def requests(self, dataset: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if dataset is None or r.dataset == dataset]

    # -- answering ----------------------------------------------------------------------------
    def _fault(self, name: str, page: int, parent: str) -> Fault | None:
        with self._lock:
            behaviour = self.behaviours.get(name)
            for fault in behaviour.faults if behaviour else ():
                if fault.matches(page, parent):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, query: str, match: Match | None, page: int,
                answer: Answer, headers: Any, batch: str | None, in_batch: int | None = None) -> None:
        entry = LoggedRequest(
            time.monotonic(), method, path, query, match.dataset if match else None,
            match.parent if match else "", page, answer.status,
            int(answer.headers["Retry-After"]) if "Retry-After" in answer.headers else None,
            int(headers.get("Retry-Attempt") or 0), batch, in_batch,
            batch is not None or _has_bearer(headers),  # a $batch's parts share its token
            hashlib.sha256(answer.data).hexdigest())
        with self._lock:
            self.log.append(entry)

    def _counted(self, method: str, target: str, headers: Any, body: bytes = b"") -> Answer:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self.answer(method, target, headers, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def answer(self, method: str, target: str, headers: Any, body: bytes = b"",
               batch: str | None = None, in_batch: int | None = None) -> Answer:
        """Answer one request (`target` is the path and query, as sent)."""
        parts = urlsplit(target)
        path, raw_query = unquote(parts.path), parts.query
        query_text = "&".join(f"{k}={v}" for k, v in parse_query(raw_query).items())
        if batch is None and not _has_bearer(headers):
            answer = Answer(401, error_body(401), {})
            self._record(method, path, query_text, None, 0, answer, headers, batch)
            return answer
        if method == "POST" and path == f"/v1.0/{BATCH}":
            answer = self._batch(body, headers)
            self._record(method, path, query_text, Match(BATCH, "", {}), 0, answer, headers, batch)
            return answer
        found = resolve(path, raw_query)
        if not isinstance(found, Match) or method != "GET":
            status, code, message = (405, "Request_BadRequest", f"{method} is not supported here") \
                if isinstance(found, Match) else (found.status, found.code, found.message)
            answer = Answer(status, error_body(status, code, message), {})
            self._record(method, path, query_text, None, 0, answer, headers, batch)
            return answer
        try:
            page, offset = _untoken(found.params["$skiptoken"]) if "$skiptoken" in found.params else (0, 0)
        except (ValueError, UnicodeDecodeError):
            page, offset = -1, 0
        answer = self._data(found, page, offset, parts.path, raw_query) if page >= 0 else \
            Answer(400, error_body(400, "BadRequest", "Invalid $skiptoken."), {})
        self._record(method, path, query_text, found, page, answer, headers, batch, in_batch)
        return answer

    def _data(self, match: Match, page: int, offset: int, path: str, raw_query: str) -> Answer:
        behaviour = self.behaviours.get(match.dataset) or Behaviour()
        fault = self._fault(match.dataset, page, match.parent)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if behaviour.latency:
            time.sleep(behaviour.latency)
        if fault and fault.status:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return Answer(fault.status, error_body(fault.status, fault.code, fault.message), headers)
        if match.dataset in self.tenant.errors:
            error = self.tenant.errors[match.dataset]
            status = int(error.get("http_status") or 500)
            return Answer(status, error_body(status, error.get("code", ""), error.get("message", "")), {})
        users = BY_NAME[match.dataset].parent is Parent.USERS
        if users and len(match.parent.split(",")) > USERS_PER_REQUEST:
            return Answer(400, error_body(400, "Request_UnsupportedQuery", "Too many child clauses specified in "
                                          "search filter expression containing 'OR' operators: "
                                          f"{len(match.parent.split(','))}. Max allowed: {USERS_PER_REQUEST}."), {})
        chain = self.tenant.chain(match.dataset, "" if users else match.parent)
        if chain is None and not self.absent_empty:
            return Answer(404, error_body(404, "Request_ResourceNotFound",
                                          f"The exported tenant has no {match.dataset}."), {})
        chain = chain or Chain()
        if users:
            chain = self._of_users(match, chain)
        if match.since is not None:
            chain = self._since(match, chain)
            if chain is None:
                return Answer(400, error_body(400, "BadRequest", f"Invalid filter clause: '{match.since}' "
                                              "is not a DateTimeOffset."), {})
        size = max(1, behaviour.page_size or self.page_size)
        if match.params.get("$top", "").isdigit():
            size = min(size, max(1, int(match.params["$top"])))
        if "signinactivity" in match.params.get("$select", "").lower():
            size = min(size, SIGN_IN_PAGE_CAP)
        if page in behaviour.empty_pages:
            value, next_offset = [], offset
        else:
            value, next_offset = chain.items[offset:offset + size], offset + size
        more = next_offset < len(chain.items) or any(p > page for p in behaviour.empty_pages)
        version, _, rest = path.lstrip("/").partition("/")
        body: dict[str, Any] = {"@odata.context": chain.context or f"{self.url}/{version}/$metadata#{rest}"}
        if more:
            kept = "&".join(p for p in raw_query.split("&")
                            if p and not p.startswith(("$skiptoken=", "%24skiptoken=")))
            body["@odata.nextLink"] = (f"{self.url}{path}?{kept}{'&' if kept else ''}"
                                       f"$skiptoken={_token(page + 1, min(next_offset, len(chain.items)))}")
        body["value"] = value
        return Answer(200, body, {})

    def _of_users(self, match: Match, chain: Chain) -> Chain:
        """The chain's users whose ids `match` names (`$filter=id in (...)`), in the chain's order, as a
        directory query answers; an id no user has is not answered. Kept per set of ids."""
        key = (match.dataset, match.parent, None)
        with self._lock:
            found = self._filtered.get(key)
        if found is None:
            wanted = {i.lower() for i in match.parent.split(",")}
            found = Chain([item for item in chain.items if str(item.get("id", "")).lower() in wanted], chain.context)
            with self._lock:
                self._filtered[key] = found
        return found

    def _since(self, match: Match, chain: Chain) -> Chain | None:
        """The chain's events at or after `match.since` (`activityDateTime ge`), in their order;
        None when the time cannot be read. Kept per time: every page of the chain asks again."""
        key = (match.dataset, match.parent, match.since)
        with self._lock:
            found = self._filtered.get(key)
        if found is not None:
            return found
        try:
            since = parse_iso(str(match.since))
        except ValueError:
            return None
        kept = []
        for item in chain.items:
            try:
                if parse_iso(item.get("activityDateTime")) >= since:
                    kept.append(item)
            except (ValueError, AttributeError):
                pass  # an event without a time is no answer to a time filter
        found = Chain(kept, chain.context)
        with self._lock:
            self._filtered[key] = found
        return found

    def _batch(self, raw: bytes, headers: Any) -> Answer:
        fault = self._fault(BATCH, 0, "")
        latency = (fault.delay if fault else 0.0) + (self.behaviours.get(BATCH) or Behaviour()).latency
        if latency:
            time.sleep(latency)
        if fault and fault.status:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return Answer(fault.status, error_body(fault.status, fault.code, fault.message), extra)
        try:
            requests = json.loads(raw)["requests"]
        except (ValueError, KeyError, TypeError):
            return Answer(400, error_body(400, "BadRequest", "Invalid batch payload."), {})
        if not isinstance(requests, list) or not 0 < len(requests) <= MAX_BATCH:
            return Answer(400, error_body(400, "BadRequest",
                                          f"A batch holds 1 to {MAX_BATCH} requests."), {})
        with self._lock:
            number, self._batches = self._batches, self._batches + 1
        responses = []
        for item in requests:
            sub_headers = dict(item.get("headers") or {})
            url = str(item.get("url", ""))
            target = url if url.startswith("/v1.0/") else f"/v1.0{url if url.startswith('/') else '/' + url}"
            sub = self.answer(str(item.get("method", "GET")).upper(), target, sub_headers,
                              batch=str(item.get("id")), in_batch=number)
            responses.append({"id": item.get("id"), "status": sub.status,
                              "headers": {"Content-Type": "application/json", **sub.headers},
                              "body": sub.body})
        return Answer(200, {"responses": responses}, {})


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its keep-alive connection is normal, not worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like Graph
        # Headers and body in one send, and no Nagle: otherwise each answer waits ~40 ms for a
        # delayed ACK, which would make the emulator, not the collector, the bottleneck.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def _reply(self, answer: Answer) -> None:
            data = answer.data
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._reply(emulator._counted("GET", self.path, self.headers))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self._reply(emulator._counted("POST", self.path, self.headers, body))

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is `emulator.log`

    return Handler
