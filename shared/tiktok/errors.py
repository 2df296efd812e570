"""TikTok's `{code, message, request_id}` error envelope as typed exceptions, mapped in one place; and
`MalformedPayload`, for TikTok data (a webhook, an API answer) that breaks TikTok's contract."""

from __future__ import annotations

from typing import Literal

PayloadProblem = Literal["invalid_json", "not_an_object", "missing_field", "invalid_field"]


class TikTokError(Exception):
    """A failed TikTok API call, or TikTok data that could not be read; carries what support needs (code, request
    id)."""

    def __init__(self, message: str, *, code: int | None = None, request_id: str | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(f"{message} (code {code}, request_id {request_id}, http {http_status})")
        self.message = message
        self.code = code
        self.request_id = request_id
        self.http_status = http_status


class RateLimited(TikTokError):
    """HTTP 429 / 36009002: back off."""

    def __init__(self, message: str, *, code: int | None = None, request_id: str | None = None,
                 http_status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code, request_id=request_id, http_status=http_status)
        self.retry_after = retry_after


class TokenExpired(TikTokError):
    """105002: refresh the access token."""


class InvalidSignature(TikTokError):
    """106001: the request's `sign` did not match."""


class PermissionDenied(TikTokError):
    """Scope, token/cipher mismatch, IP allow-list or permission errors: permanent for this call."""


class NotFound(TikTokError):
    """The order or resource does not exist for this shop."""


class InvalidPath(TikTokError):
    """36009009 / 36009010: the request's path or method does not exist — a bug in shopsync to report (with the
    request id), never "not found"."""


class Transient(TikTokError):
    """5xx, internal errors, "system busy, try again" codes, timeouts and connection errors: retry."""


class OtherError(TikTokError):
    """Anything else (bad request, wrong parameters): permanent."""


class MalformedPayload(TikTokError):
    """A webhook or API answer that breaks TikTok's contract: `field` names where (`data.order_id`,
    `line_items[2].sku_id`, `body`), `reason` says what is wrong (`is required`, `must be an integer, not "1"`).

    `problem` is the machine-readable kind (the gateway's 400 `error` code); `event_type` is the webhook's `type`
    when the envelope was read and its `data` was not. Permanent: asking again gets the same answer.
    """

    def __init__(self, field: str, reason: str, *, problem: PayloadProblem = "invalid_field",
                 event_type: int | None = None) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason
        self.problem: PayloadProblem = problem
        self.event_type = event_type

    def __str__(self) -> str:
        return f"{self.field} {self.reason}"


RATE_LIMITED_CODES = frozenset({36009002})
TOKEN_EXPIRED_CODES = frozenset({105002})
SIGNATURE_CODES = frozenset({106001})
PERMISSION_CODES = frozenset({10006402, 105005, 101000, 36009033, 21011028})
NOT_FOUND_CODES = frozenset({21008111})
INVALID_PATH_CODES = frozenset({36009009, 36009010})
# "System busy / timeout, try again" in the Mark Package As Shipped and Ship Package specs (API facts §10.7).
FULFILLMENT_BUSY_CODES = frozenset({11001027, 11001031, 11006005, 11006026, 21001003, 21001008, 21001011, 21001043,
                                    21001055, 21008300, 21022029, 21022030, 21042001, 21042076})
TRANSIENT_CODES = frozenset({36009003, 36009007, 10002014, 10002015, 10037002, 10037003, 10037004}
                            ) | FULFILLMENT_BUSY_CODES


def error_for(code: int | None, message: str, request_id: str | None, http_status: int | None,
              retry_after: float | None = None) -> TikTokError:
    """The exception for a response with a non-zero `code` (or a failing HTTP status)."""
    if http_status == 429 or code in RATE_LIMITED_CODES:
        return RateLimited(message, code=code, request_id=request_id, http_status=http_status,
                           retry_after=retry_after)
    kind: type[TikTokError] = OtherError
    if code in TOKEN_EXPIRED_CODES:
        kind = TokenExpired
    elif code in SIGNATURE_CODES:
        kind = InvalidSignature
    elif code in PERMISSION_CODES:
        kind = PermissionDenied
    elif code in INVALID_PATH_CODES:
        kind = InvalidPath
    elif code in NOT_FOUND_CODES or (http_status == 404 and not code):
        kind = NotFound
    elif code in TRANSIENT_CODES or (http_status is not None and http_status >= 500):
        kind = Transient
    return kind(message, code=code, request_id=request_id, http_status=http_status)
