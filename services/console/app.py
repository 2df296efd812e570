"""The console app: `create_app(settings, stores=..., mappings=..., operator=...)`.

Every page is behind sign-in but the sign-in page (and the static files); every form post carries the CSRF token;
the read-only role is refused every change. Responses carry a strict Content-Security-Policy (scripts and styles
from the console itself only) and `X-Frame-Options: DENY`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import pages
from services.console.auth import Credentials, Sessions
from services.console.mapping_admin import MappingAdmin
from services.console.ports import Operator, Stores
from services.console.web import HERE, Console, template_environment
from shared.settings import Settings

PUBLIC = ("/signin", "/static/", "/healthz")
SECURITY_HEADERS = [(b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
                    (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin")]


def credentials_from(settings: Settings) -> Credentials:
    return Credentials(admin=[settings.shopsync_admin_token.get_secret_value(),
                              settings.shopsync_console_password.get_secret_value()],
                       viewer=[settings.shopsync_console_readonly_token.get_secret_value()])


class RequireSignIn:
    """Every path but the public ones needs a valid session: a page redirects to sign-in, anything else gets 403."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        path: str = scope["path"]
        if not path.startswith(PUBLIC) and self.sessions.session_of(Request(scope)) is None:
            response: Response
            if scope["method"] == "GET":
                response = RedirectResponse(f"/signin?next={quote(path)}", status_code=303)
            else:
                response = PlainTextResponse("Sign in first.", status_code=403)
            await response(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)


def create_app(settings: Settings, *, stores: Stores, mappings: MappingAdmin, operator: Operator,
               running: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None) -> Starlette:
    """The console over its collaborators; `running` is what its lifespan keeps open (the stores' table view...)."""
    sessions = Sessions(credentials_from(settings), settings.shopsync_console_session_s)
    console = Console(sessions, stores, mappings, operator, template_environment())

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def home(_: Request) -> Response:
        return RedirectResponse("/stores", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTPException only
        return console.render(request, "error.html", status_code=exc.status_code, message=exc.detail)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if running is None:
            yield
            return
        async with running():
            yield

    routes: list[BaseRoute] = [
        Route("/", home), Route("/healthz", healthz),
        *pages.signin.routes(console), *pages.stores.routes(console), *pages.mappings.routes(console),
        *pages.orders.routes(console), *pages.operations.routes(console),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RequireSignIn, sessions=sessions)],
                     exception_handlers={HTTPException: refused}, lifespan=lifespan)
