"""Sign-in, sessions and CSRF for the console (pure: no I/O but the request it is handed).

A session is a signed cookie (`role` and expiry, HMAC-SHA256 under a key derived from the configured secrets, so
changing them signs everyone out). Every form carries a CSRF token that must equal the signed CSRF cookie (signed
double submit): a page on another site can neither read the cookie nor forge its signature. Two roles: `admin`
(the admin token or the console password) changes things; `viewer` (the read-only token) sees everything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

Role = Literal["admin", "viewer"]
ADMIN: Role = "admin"
VIEWER: Role = "viewer"
SESSION_COOKIE = "shopsync_console"
CSRF_COOKIE = "shopsync_console_csrf"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Session:
    role: Role
    expires_at: int

    @property
    def can_change(self) -> bool:
        return self.role == ADMIN


class Credentials:
    """Who may sign in: full-rights secrets (admin token, console password) and the read-only token."""

    def __init__(self, admin: list[str], viewer: list[str]) -> None:
        self._admin = [s for s in admin if s]
        self._viewer = [s for s in viewer if s]
        material = "\0".join(["shopsync-console-session", *self._admin, "\1", *self._viewer])
        self.signing_key = hashlib.sha256(material.encode()).digest()

    @property
    def configured(self) -> bool:
        return bool(self._admin or self._viewer)

    def role_of(self, secret: str) -> Role | None:
        """The role `secret` signs in as, compared in constant time against every configured secret."""
        given = secret.encode()
        admin = any(hmac.compare_digest(given, s.encode()) for s in self._admin)
        viewer = any(hmac.compare_digest(given, s.encode()) for s in self._viewer)
        return ADMIN if admin else VIEWER if viewer else None


class Signer:
    """`value.signature` tokens (URL-safe base64, HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, value: bytes) -> str:
        body = base64.urlsafe_b64encode(value).decode().rstrip("=")
        return f"{body}.{self._signature(body)}"

    def unsign(self, token: str) -> bytes | None:
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature, self._signature(body)):
            return None
        try:
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return None

    def _signature(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Sessions:
    """Issues and reads session and CSRF cookies."""

    def __init__(self, credentials: Credentials, lifetime_s: int, clock: Callable[[], float] = time.time) -> None:
        self.credentials = credentials
        self.lifetime_s = lifetime_s
        self._signer = Signer(credentials.signing_key)
        self._clock = clock

    def session_of(self, request: Request) -> Session | None:
        raw = self._signer.unsign(request.cookies.get(SESSION_COOKIE, ""))
        if raw is None:
            return None
        try:
            doc = orjson.loads(raw)
            session = Session(role=doc["role"], expires_at=int(doc["exp"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if session.role not in (ADMIN, VIEWER) or session.expires_at <= self._clock():
            return None
        return session

    def start(self, response: Response, request: Request, role: Role) -> None:
        """Sign in: the session cookie, and a fresh CSRF token (a token from before sign-in is not reused)."""
        expires = int(self._clock()) + self.lifetime_s
        token = self._signer.sign(orjson.dumps({"role": role, "exp": expires}))
        response.set_cookie(SESSION_COOKIE, token, max_age=self.lifetime_s, httponly=True,
                            secure=_https(request), samesite="lax", path="/")
        self._set_csrf(response, request, self.new_csrf())

    def end(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    def new_csrf(self) -> str:
        return self._signer.sign(secrets.token_bytes(18))

    def csrf_of(self, request: Request) -> str | None:
        """The request's CSRF token when its cookie is one this console signed."""
        token = request.cookies.get(CSRF_COOKIE, "")
        return token if token and self._signer.unsign(token) is not None else None

    def ensure_csrf(self, response: Response, request: Request, token: str) -> None:
        """Set the CSRF cookie when the request did not carry `token` already."""
        if request.cookies.get(CSRF_COOKIE) != token:
            self._set_csrf(response, request, token)

    def _set_csrf(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, secure=_https(request), samesite="strict", path="/")

    async def checked_form(self, request: Request, *, change: bool = True) -> FormData:
        """The posted form, once its CSRF token matches the cookie (else 403), and, for a change, once the session
        may change things (else 403: the read-only role)."""
        form = await request.form()
        expected = self.csrf_of(request)
        given = form.get(CSRF_FIELD)
        if expected is None or not isinstance(given, str) or not hmac.compare_digest(given, expected):
            raise HTTPException(403, "This form has expired or did not come from the console: reload and retry.")
        if change:
            session = self.session_of(request)
            if session is None or not session.can_change:
                raise HTTPException(403, "Your sign-in is read-only: it can see everything and change nothing.")
        return form


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


class SignInThrottle:
    """Wrong secrets per client address: after `limit` failures within `window_s`, sign-in from that address is
    refused (429) until the oldest of them leaves the window. A success forgets the address's failures. At most
    `tracked` addresses are remembered (the longest quiet ones are forgotten first), so a flood of addresses cannot
    grow memory without bound."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, tracked: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.tracked = limit, window_s, tracked
        self._failures: dict[str, list[float]] = {}
        self._clock = clock

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try again (0: now)."""
        recent = self._recent(address)
        if len(recent) < self.limit:
            return 0
        return max(1, int(recent[-self.limit] + self.window_s - self._clock() + 0.999))

    def failed(self, address: str) -> None:
        recent = self._recent(address)
        recent.append(self._clock())
        self._failures.pop(address, None)  # re-insert: dict order is least recently failed first
        self._failures[address] = recent[-self.limit:]
        while len(self._failures) > self.tracked:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> list[float]:
        since = self._clock() - self.window_s
        return [t for t in self._failures.get(address, ()) if t > since]
