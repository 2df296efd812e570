"""Signatures TikTok Shop uses, shared by the gateway, the client and the sandbox.

Webhooks (facts §1.3): lowercase hex HMAC-SHA256, key = app secret, message = app_key + raw body bytes.
API requests (facts §4.2, §10.11): every query param but `sign` and `access_token`, sorted, as key+value — keys
with an empty value included, as TikTok's own Go/Java samples do (a `None` is sent as `key=` by httpx, so it signs
as empty too) — path in front, the exact body appended for non-multipart requests, wrapped in the app secret,
HMAC-SHA256 lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

_UNSIGNED_PARAMS = frozenset({"sign", "access_token"})


def webhook_signature(app_key: str, app_secret: str, body: bytes) -> str:
    """The `Authorization` header value TikTok sends with `body`."""
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


def verify_webhook(app_key: str, app_secrets: Iterable[str], body: bytes, header: str | None) -> bool:
    """True when `header` is the exact signature of `body` under any of `app_secrets` (constant-time compare).

    The header must be the bare lowercase hex digest: no `Bearer ` prefix, no upper case.
    """
    if not header:
        return False
    given = header.encode("ascii", "replace")
    ok = False
    for secret in app_secrets:
        if secret:
            expected = webhook_signature(app_key, secret, body).encode()
            ok |= hmac.compare_digest(expected, given)
    return ok


def string_to_sign(path: str, params: Mapping[str, object], body: bytes | None = b"", multipart: bool = False) -> bytes:
    """The bytes TikTok signs (before wrapping in the secret)."""
    parts = [path.encode()]
    for key in sorted(k for k in params if k not in _UNSIGNED_PARAMS):
        value = params[key]
        if value is None:
            value = ""
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts.append(key.encode() + str(value).encode())
    if body and not multipart:
        parts.append(body)
    return b"".join(parts)


def api_signature(app_secret: str, path: str, params: Mapping[str, object], body: bytes | None = b"",
                  multipart: bool = False) -> str:
    """The `sign` query parameter for a request to `path` with query `params` and `body`."""
    secret = app_secret.encode()
    message = secret + string_to_sign(path, params, body, multipart) + secret
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_api_signature(app_secret: str, path: str, params: Mapping[str, object], body: bytes | None,
                         multipart: bool = False) -> bool:
    """Server side (the sandbox): does `params['sign']` match?"""
    given = str(params.get("sign", ""))
    expected = api_signature(app_secret, path, params, body, multipart)
    return hmac.compare_digest(expected.encode(), given.encode("ascii", "replace"))
