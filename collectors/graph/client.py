"""The one place that talks HTTP: msgraph-sdk's request adapter, asked for raw bytes.

Why raw bytes: the SDK's typed models cost ~5 ms per object (180,000 audit events would take
15 minutes); `json.loads` of the same bytes takes milliseconds, and the bytes are exactly the
receipt to keep. Auth, retry (429/503/504 with Retry-After), redirect and telemetry middleware
still apply because every request goes through `send_primitive_async`. Beta requests go through
the same v1.0 adapter as absolute URLs (no 600 MB beta SDK). msgraph is imported here only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import GraphError, GraphRunError

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


class GraphHttp:
    """GET a URL (or POST a $batch) and get the body's bytes; failures become `GraphError`."""

    def __init__(self, credential: Any, settings: HttpSettings):
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import \
            AzureIdentityAuthenticationProvider
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware import RetryHandler
        from msgraph import GraphServiceClient
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph_core import GraphClientFactory
        from msgraph_core.middleware import GraphTelemetryHandler

        self.settings = settings
        base = settings.base_url.rstrip("/")
        parts = urlsplit(base)
        self.root = f"{parts.scheme}://{parts.netloc}"  # beta and nextLinks hang off the host
        self.version_prefix = parts.path  # "/v1.0"
        middleware = [_retry_handler(settings) if isinstance(m, RetryHandler) else m
                      for m in KiotaClientFactory.get_default_middleware(None)]
        middleware.append(GraphTelemetryHandler())
        timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 30.0))
        self._client = GraphClientFactory.create_with_custom_middleware(
            middleware, client=httpx.AsyncClient(timeout=timeout, http2=parts.scheme == "https"))
        # The token goes to the Graph host only, never to a host a nextLink might name.
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[_scope(parts)],
                                                   allowed_hosts=[parts.hostname or ""])
        adapter = GraphRequestAdapter(auth, client=self._client)
        adapter.base_url = base  # before the client: it would default to graph.microsoft.com
        # The service client registers the JSON parse nodes that read Graph's error bodies.
        self.graph = GraphServiceClient(request_adapter=adapter)
        self.adapter = self.graph.request_adapter
        self._errors = {"XXX": ODataError}
        self._gate = asyncio.Semaphore(max(1, settings.concurrency))

    def url(self, request: str) -> str:
        """An absolute URL for a request written relative to the host ("/v1.0/..", "/beta/..")."""
        from urllib.parse import quote

        return self.root + quote(request, safe="/?&=$,()'@:*-._~!")

    async def get(self, url: str) -> bytes:
        return await self._send("GET", url, None)

    async def post_json(self, url: str, payload: bytes) -> bytes:
        return await self._send("POST", url, payload)

    async def _send(self, method: str, url: str, payload: bytes | None) -> bytes:
        import httpx
        from azure.core.exceptions import ClientAuthenticationError
        from kiota_abstractions.api_error import APIError
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        info = RequestInformation(Method.GET if method == "GET" else Method.POST)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        if payload is not None:
            info.headers.try_add("Content-Type", "application/json")
            info.content = payload
        async with self._gate:
            try:
                body = await self.adapter.send_primitive_async(info, "bytes", self._errors)
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


def _graph_error(exc: Any) -> GraphError:
    status = getattr(exc, "response_status_code", None)
    detail = getattr(exc, "error", None)
    code = getattr(detail, "code", None) or "UnknownError"
    message = getattr(detail, "message", None) or _first_line(getattr(exc, "message", None) or str(exc))
    return GraphError(status, code, message)
