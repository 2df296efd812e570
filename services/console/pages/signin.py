"""Sign in with a secret (admin token, console password, read-only token); sign out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.console.web import Console, see_other


def local_path(target: str) -> str:
    """Where to go after sign-in: a path on the console only (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def routes(console: Console) -> list[Route]:
    sessions = console.sessions

    async def form(request: Request) -> Response:
        return console.render(request, "signin.html", next=local_path(request.query_params.get("next", "/")),
                              message="" if sessions.credentials.configured else
                              "No sign-in is configured: set SHOPSYNC_ADMIN_TOKEN or SHOPSYNC_CONSOLE_PASSWORD.")

    async def sign_in(request: Request) -> Response:
        posted = await sessions.checked_form(request, change=False)
        secret, target = str(posted.get("secret", "")), local_path(str(posted.get("next", "/")))
        role = sessions.credentials.role_of(secret) if secret else None
        if role is None:
            return console.render(request, "signin.html", status_code=401, next=target,
                                  message="That is not a token or password this console accepts.")
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
