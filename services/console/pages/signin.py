"""Sign in with a secret (admin token, console password, read-only token); sign out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.console.auth import SignInThrottle
from services.console.web import Console, see_other


def local_path(target: str) -> str:
    """Where to go after sign-in: a path on the console only (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def routes(console: Console, throttle: SignInThrottle | None = None) -> list[Route]:
    sessions, throttle = console.sessions, throttle or SignInThrottle()

    async def form(request: Request) -> Response:
        return console.render(request, "signin.html", next=local_path(request.query_params.get("next", "/")),
                              message="" if sessions.credentials.configured else
                              "No sign-in is configured: set SHOPSYNC_ADMIN_TOKEN or SHOPSYNC_CONSOLE_PASSWORD.")

    async def sign_in(request: Request) -> Response:
        posted = await sessions.checked_form(request, change=False)
        secret, target = str(posted.get("secret", "")), local_path(str(posted.get("next", "/")))
        address = request.client.host if request.client else ""
        if wait := throttle.retry_after(address):
            refused = console.render(request, "signin.html", status_code=429, next=target,
                                     message=f"Too many wrong sign-ins from here: try again in {wait} s.")
            refused.headers["Retry-After"] = str(wait)
            return refused
        role = sessions.credentials.role_of(secret) if secret else None
        if role is None:
            throttle.failed(address)
            return console.render(request, "signin.html", status_code=401, next=target,
                                  message="That is not a token or password this console accepts.")
        throttle.succeeded(address)
        response = see_other(target)
        sessions.start(response, request, role)
        return response

    async def sign_out(request: Request) -> Response:
        await sessions.checked_form(request, change=False)
        response = see_other("/signin")
        sessions.end(response)
        return response

    return [Route("/signin", form, methods=["GET"]), Route("/signin", sign_in, methods=["POST"]),
            Route("/signout", sign_out, methods=["POST"])]
