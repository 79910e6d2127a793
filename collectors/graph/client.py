"""The one place that talks HTTP: msgraph-sdk's request adapter and its httpx client, asked for raw bytes.

Why raw bytes: the SDK's typed models cost ~5 ms per object (180,000 audit events would take
15 minutes); `json.loads` of the same bytes takes milliseconds, and the bytes are exactly the
receipt to keep. Beta requests go through the same v1.0 client as absolute URLs (no 600 MB beta
SDK). msgraph is imported here only.

Two paths, one client. A dataset's first request goes through the SDK's request adapter
(`send_primitive_async`: kiota's authentication provider, its ODataError mapping, its CAE claims
retry). The requests after it - nextLinks and further `$batch` requests - are sent straight
through the same httpx client (`_direct`), with the token from the same access-token provider
(same allowed hosts, same https rule): the SDK's middleware - retry on 429/503/504 honouring
Retry-After, redirect, user agent, telemetry - applies to them as to the first, but kiota's
per-request RequestInformation, tracing spans and response handling (~0.5 ms of CPU a request on
the one event loop) do not. A 401 on that path is sent again through the adapter, which answers
a claims challenge as the SDK would, or fails as before.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable
from urllib.parse import urlsplit

from .errors import GraphError, GraphRunError
from .tuning import tune

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"


@dataclass
class RetryRecord:
    """One retry the SDK's RetryHandler made: what it answered to and how long it waited."""

    url: str
    status: int
    retry_after: str | None  # the header as Graph sent it
    attempt: int  # 1 for the first retry
    wait: float  # seconds actually waited (after `time_scale`)


@dataclass
class HttpSettings:
    base_url: str = DEFAULT_BASE_URL
    concurrency: int = 4  # requests in flight at once, across all datasets
    timeout: float = 60.0  # seconds per attempt (connect, read); retries are bounded in number
    max_retries: int = 3  # the SDK's default; at most 10
    # Multiplies every wait the RetryHandler computes (Retry-After or back-off). 1.0 keeps the
    # SDK's behaviour; tests shrink it so that a Retry-After of 2 s costs 2 ms.
    time_scale: float = 1.0
    retries: list[RetryRecord] = field(default_factory=list)


WIRE_OPTION = "pimtrail.on_the_wire"
HEAD_LIMIT = 1 << 20  # bytes of an answer read ahead, at most, to find its nextLink
# Turns of the event loop an answer waits, once its head has named the next page, for that
# page's request to reach the wire (through the middleware and httpcore's locks, ~5 turns)
# before its own body is read: on its own, the audit chain stepped every 26.5 ms instead of
# 24.4 ms when the request and the 1.3 MB body being read took turns.
AHEAD_TURNS = 6


class Baton:
    """The slot of `Gate` that an answered request hands to the request for the page its head
    named: a request chain keeps its slot from page to page instead of queueing for a free one
    behind other requests (the audit log's 181 pages waited ~10 ms each). A slot counts a
    request sent and not yet answered; the body of an answered page is read without one."""

    def __init__(self, gate: "Gate"):
        self._gate, self._held = gate, True

    def take(self) -> bool:
        """The request that takes it holds the slot from now on (and gives it back to the gate)."""
        held, self._held = self._held, False
        return held

    def drop(self) -> None:
        """Not taken (the page was not asked for after all): back to the gate. Idempotent."""
        if self._held:
            self._held = False
            self._gate.release()


OnNextLink = Callable[[str, Baton], None]  # a nextLink from an answer's head, and that answer's slot


def _on_the_wire(gate: "Gate") -> Any:
    """Middleware, last before the network (after the SDK's retry, redirect and telemetry
    handlers): each HTTP request takes a slot of `gate` just before it goes on the wire and
    gives it back when its answer has been read (its stream closed), so the SDK's work before
    and after - building the request, the token, the other handlers, a Retry-After wait - does
    not hold one of the `concurrency` slots. And for a request that asks for it
    (`on_next_link`), the head of a 200 answer is read as soon as it arrives and, when its
    nextLink comes before `value` (as Graph and the emulator write it), handed over at once, so
    the chain's next request is on its way while this body is still arriving. The body is then
    passed on whole, byte for byte, to the SDK, which reads it as before."""
    import weakref

    import httpx
    from kiota_http.middleware import BaseMiddleware
    from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY

    from .pagetext import Unclear, front

    class Held(httpx.AsyncByteStream):
        """The answer's stream: what was read ahead, then the rest; closing it frees the slot."""

        def __init__(self, head: list[bytes], rest: Any, stream: Any, release: Any):
            self._head, self._rest, self._stream, self._release = head, rest, stream, release

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in self._head:
                yield chunk
            self._head = []
            async for chunk in self._rest:
                yield chunk

        async def aclose(self) -> None:
            try:
                await self._stream.aclose()
            finally:
                self._release()

    class OnTheWire(BaseMiddleware):
        async def send(self, request: Any, transport: Any) -> Any:
            option = (request.extensions.get(REQUEST_OPTIONS_KEY) or {}).get(WIRE_OPTION)
            priority = option.priority if option is not None else 0
            baton = option.baton if option is not None else None
            if baton is None or not baton.take():  # a chain's next page goes on its page's slot
                await gate.acquire(priority)
            released = False

            def release() -> None:
                nonlocal released
                if not released:
                    released = True
                    gate.release()

            try:
                response = await super().send(request, transport)
                stream, head = response.stream, []
                rest = stream.__aiter__()
                if option is not None and option.on_next_link is not None and response.status_code == 200:
                    size = 0
                    while size < HEAD_LIMIT:
                        try:
                            chunk = await rest.__anext__()
                        except StopAsyncIteration:
                            break
                        head.append(chunk)
                        size += len(chunk)
                        try:
                            link, _ = front(b"".join(head))
                        except Unclear:
                            continue  # the members before `value` have not all arrived (or are unusual)
                        if link:
                            # this request is answered: its slot passes to the next page's request
                            released, handed = True, Baton(gate)
                            option.on_next_link(link, handed)
                            for _ in range(AHEAD_TURNS):  # let that request reach the wire first
                                await asyncio.sleep(0)
                        break
            except BaseException:
                release()
                raise
            response.stream = held = Held(head, rest, stream, release)
            weakref.finalize(held, release)  # an answer dropped unread still frees its slot
            return response

    return OnTheWire()


_OPTION: Any = None


def _wire_option(priority: int, on_next_link: OnNextLink | None, baton: Baton | None = None) -> Any:
    """The request option `OnTheWire` reads (a kiota RequestOption)."""
    global _OPTION
    if _OPTION is None:
        from kiota_abstractions.request_option import RequestOption

        class OnTheWireOption(RequestOption):
            def __init__(self, priority: int, on_next_link: OnNextLink | None, baton: Baton | None):
                self.priority, self.on_next_link, self.baton = priority, on_next_link, baton

            @staticmethod
            def get_key() -> str:
                return WIRE_OPTION

        _OPTION = OnTheWireOption
    return _OPTION(priority, on_next_link, baton)


def _retry_handler(settings: HttpSettings) -> Any:
    from kiota_http.middleware import RetryHandler
    from kiota_http.middleware.options import RetryHandlerOption

    class RecordingRetryHandler(RetryHandler):
        """The SDK's RetryHandler, with its waits scaled and recorded."""

        def get_delay_time(self, retry_count: int, response: Any = None,
                           delay: float = RetryHandlerOption.DEFAULT_DELAY) -> float:
            wait = super().get_delay_time(retry_count, response, delay) * settings.time_scale
            if response is not None and response.status_code in self.retry_on_status_codes \
                    and retry_count < self.options.max_retry:
                settings.retries.append(RetryRecord(str(response.request.url), response.status_code,
                                                    response.headers.get("retry-after"),
                                                    retry_count + 1, wait))
            return wait

    return RecordingRetryHandler(RetryHandlerOption(max_retries=settings.max_retries))


class Gate:
    """At most `size` requests in flight. Waiting requests get a free slot by priority (lower
    first), then in arrival order. The collector gives a request chain's next page the priority
    `-pages read so far`: the deepest chain - the audit log's 181 pages on a large tenant, the
    run's critical path - never waits behind hundreds of queued `$batch` requests, which fill the
    other slots."""

    def __init__(self, size: int):
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap
        self._arrival = itertools.count()

    @asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, priority: int = 0) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrival), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a slot, then cancelled: pass it on
                self.release()
            else:  # still waiting: leave the queue (a waiter exists only while no slot is free)
                self._waiting = [w for w in self._waiting if w[2] is not turn]
                heapq.heapify(self._waiting)
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


class GraphHttp:
    """GET a URL (or POST a $batch) and get the body's bytes; failures become `GraphError`."""

    def __init__(self, credential: Any, settings: HttpSettings):
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import \
            AzureIdentityAuthenticationProvider
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware import RetryHandler
        from kiota_http.middleware.options import HeadersInspectionHandlerOption
        from msgraph import GraphServiceClient
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph_core import GraphClientFactory
        from msgraph_core.middleware import GraphTelemetryHandler

        tune()  # process-wide, once: tuning.py
        self.settings = settings
        base = settings.base_url.rstrip("/")
        parts = urlsplit(base)
        self.root = f"{parts.scheme}://{parts.netloc}"  # beta and nextLinks hang off the host
        self.version_prefix = parts.path  # "/v1.0"
        # The SDK's default middleware, with two options of ours: the retry handler's waits
        # recorded (and scaled in tests), and no headers inspection - by default it copies every
        # request's and answer's headers into one collection shared by all requests, which
        # nothing reads, and which grows with every answer's request-id.
        inspection = HeadersInspectionHandlerOption(inspect_request_headers=False, inspect_response_headers=False)
        middleware = [_retry_handler(settings) if isinstance(m, RetryHandler) else m
                      for m in KiotaClientFactory.get_default_middleware({inspection.get_key(): inspection})]
        middleware.append(GraphTelemetryHandler())
        self._gate = Gate(max(1, settings.concurrency))
        middleware.append(_on_the_wire(self._gate))
        timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 30.0))
        self._client = GraphClientFactory.create_with_custom_middleware(
            middleware, client=httpx.AsyncClient(timeout=timeout, http2=parts.scheme == "https"))
        # The token goes to the Graph host only, never to a host a nextLink might name.
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[_scope(parts)],
                                                   allowed_hosts=[parts.hostname or ""])
        self._tokens = auth.access_token_provider  # the adapter's own: `_direct` asks it too
        adapter = GraphRequestAdapter(auth, client=self._client)
        adapter.base_url = base  # before the client: it would default to graph.microsoft.com
        # The service client registers the JSON parse nodes that read Graph's error bodies.
        self.graph = GraphServiceClient(request_adapter=adapter)
        self.adapter = self.graph.request_adapter
        self._errors = {"XXX": ODataError}

    def url(self, request: str) -> str:
        """An absolute URL for a request written relative to the host ("/v1.0/..", "/beta/..")."""
        from urllib.parse import quote

        return self.root + quote(request, safe="/?&=$,()'@:*-._~!")

    async def get(self, url: str, priority: int = 0, on_next_link: OnNextLink | None = None,
                  *, via_adapter: bool = False, baton: Baton | None = None) -> bytes:
        """`priority`: lower goes first when requests wait for a free slot (see `Gate`).
        `on_next_link`: called with the answer's nextLink as soon as its head shows one (before
        `value`), while the body is still being read, and with the answer's slot (`Baton`), which
        the caller passes to the request for that link (`baton`) or drops; not called otherwise.
        `via_adapter`: through the SDK's request adapter (a dataset's first request), else
        straight through its client."""
        return await self._send("GET", url, None, priority, on_next_link, via_adapter, baton)

    async def post_json(self, url: str, payload: bytes, priority: int = 0, *, via_adapter: bool = False) -> bytes:
        return await self._send("POST", url, payload, priority, None, via_adapter)

    async def _send(self, method: str, url: str, payload: bytes | None, priority: int = 0,
                    on_next_link: OnNextLink | None = None, via_adapter: bool = True,
                    baton: Baton | None = None) -> bytes:
        import httpx
        from azure.core.exceptions import ClientAuthenticationError
        from kiota_abstractions.api_error import APIError

        option = _wire_option(priority, on_next_link, baton)
        try:  # the slot (`Gate`) is taken by `OnTheWire`, just before the request is sent
            if not via_adapter:
                body = await self._direct(method, url, payload, option)
                if body is not None:
                    return body
            body = await self._adapted(method, url, payload, option)
        except ClientAuthenticationError as exc:
            raise GraphRunError(f"sign-in failed: {_first_line(exc.message)} "
                                "(see docs/setup.md, 'Sign-in methods')") from None
        except APIError as exc:
            raise _graph_error(exc) from None
        except httpx.TimeoutException:
            raise GraphError(None, "Timeout", f"no answer within {self.settings.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise GraphError(None, "NetworkError", _first_line(str(exc)) or type(exc).__name__) from None
        return body or b""

    async def _adapted(self, method: str, url: str, payload: bytes | None, option: Any) -> bytes | None:
        """Through the SDK's request adapter: kiota's RequestInformation, authentication
        provider and error mapping (ODataError)."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        info = RequestInformation(Method.GET if method == "GET" else Method.POST)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        info.add_request_options([option])
        if payload is not None:
            info.headers.try_add("Content-Type", "application/json")
            info.content = payload
        return await self.adapter.send_primitive_async(info, "bytes", self._errors)

    async def _direct(self, method: str, url: str, payload: bytes | None, option: Any) -> bytes | None:
        """Straight through the SDK's httpx client and its middleware (see the module's
        docstring). None: a 401, to be sent again through the adapter."""
        from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY

        headers = {"Accept": "application/json"}
        token = await self._tokens.get_authorization_token(url)  # "" for a host not allowed
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if payload is not None:
            headers["Content-Type"] = "application/json"
        # The request options key is what routes a request through the middleware pipeline
        # (msgraph-core's AsyncGraphTransport); the handlers read their options from it.
        request = self._client.build_request(method, url, headers=headers, content=payload,
                                             extensions={REQUEST_OPTIONS_KEY: {WIRE_OPTION: option}})
        response = await self._client.send(request)  # read whole: the slot is free again
        status = response.status_code
        if status < 300:
            return response.content
        if status == 401:
            return None
        raise _answer_error(status, response.content)

    async def close(self) -> None:
        await self._client.aclose()


def _scope(parts: Any) -> str:
    """`https://<graph host>/.default`: the public cloud's or a national cloud's Graph. A local
    emulator gets the public scope (and the token goes only to `allowed_hosts` anyway)."""
    host = parts.hostname or ""
    local = host in ("localhost", "127.0.0.1", "::1")
    return "https://graph.microsoft.com/.default" if local else f"https://{host}/.default"


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""


def _answer_error(status: int, content: bytes) -> GraphError:
    """Graph's error body (`{"error": {"code", "message"}}`) as the adapter's ODataError gives it."""
    import json

    try:
        error = json.loads(content).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    message = error.get("message") if isinstance(error.get("message"), str) else None
    return GraphError(status, str(error.get("code") or "UnknownError"),
                      message or f"the server answered {status}")


def _graph_error(exc: Any) -> GraphError:
    status = getattr(exc, "response_status_code", None)
    detail = getattr(exc, "error", None)
    code = getattr(detail, "code", None) or "UnknownError"
    message = getattr(detail, "message", None) or _first_line(getattr(exc, "message", None) or str(exc))
    return GraphError(status, code, message)
