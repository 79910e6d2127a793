"""What the emulator can be told to do per dataset: page sizes, empty pages, latency and faults.

Error bodies are Graph's (code and message as Graph sends them) because the collector matches
on the code, never on the message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Graph's codes and messages for the failures pimtrail must tell apart.
LICENCE_P2 = ("AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")
NON_PREMIUM = ("Authentication_RequestFromNonPremiumTenantOrB2CTenant",
               "Neither tenant is B2C or tenant doesn't have premium license")
DENIED = ("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
DEFAULT_CODES = {
    400: ("BadRequest", "Invalid request."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    404: ("Request_ResourceNotFound", "Resource does not exist or one of its queried "
          "reference-property objects are not present."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response."),
}


def error_body(status: int, code: str = "", message: str = "") -> dict[str, Any]:
    default_code, default_message = DEFAULT_CODES.get(status, ("UnknownError", "Unknown error."))
    request_id = str(uuid.uuid4())
    return {"error": {
        "code": code or default_code, "message": message or default_message,
        "innerError": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                       "request-id": request_id, "client-request-id": request_id},
    }}


@dataclass
class Fault:
    """An answer the emulator gives instead of (or before) the data.

    `status` None means "answer normally", which with `delay` makes a slow response.
    `times` counts how many matching requests get the fault (None: every one);
    `page` (0 = a chain's first request) and `parent` narrow which requests match."""

    status: int | None = None
    code: str = ""
    message: str = ""
    retry_after: int | None = None
    times: int | None = 1
    page: int | None = None
    parent: str | None = None
    delay: float = 0.0

    def matches(self, page: int, parent: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.page is not None and self.page != page:
            return False
        return self.parent is None or self.parent == parent


@dataclass
class Behaviour:
    """How one dataset (or "$batch") is served."""

    page_size: int | None = None  # None: the emulator's default page size
    empty_pages: tuple[int, ...] = ()  # page numbers served empty, still with a nextLink
    latency: float = 0.0  # seconds added to every answer
    faults: list[Fault] = field(default_factory=list)


# Ready-made faults, named by what they stand for.
def throttled(times: int = 1, retry_after: int | None = 1, **kw: Any) -> Fault:
    return Fault(429, retry_after=retry_after, times=times, **kw)


def unavailable(times: int = 1, retry_after: int | None = None, **kw: Any) -> Fault:
    return Fault(503, retry_after=retry_after, times=times, **kw)


def gateway_timeout(times: int = 1, **kw: Any) -> Fault:
    return Fault(504, times=times, **kw)


def licence_missing(**kw: Any) -> Fault:
    """Entra ID P2 missing: how PIM endpoints answer."""
    return Fault(400, *LICENCE_P2, times=None, **kw)


def premium_missing(**kw: Any) -> Fault:
    """Entra ID P1 missing: how sign-in activity, reports and Conditional Access answer."""
    return Fault(403, *NON_PREMIUM, times=None, **kw)


def permission_missing(**kw: Any) -> Fault:
    return Fault(403, *DENIED, times=None, **kw)


def slow(seconds: float, times: int | None = 1, **kw: Any) -> Fault:
    return Fault(None, delay=seconds, times=times, **kw)
