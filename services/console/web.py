"""What every console page shares: the collaborators, the templates, rendering with the CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from services.console.auth import CSRF_FIELD, Sessions
from services.console.mapping_admin import MappingAdmin
from services.console.ports import Operator, Stores

HERE = Path(__file__).parent
PAGES = [("/stores", "Stores"), ("/mappings", "Mappings"), ("/orders", "Orders"), ("/sync", "Sync"),
         ("/operations", "Operations")]


def template_environment() -> jinja2.Environment:
    """Templates from the package; autoescaped, always (every value a page shows comes from outside)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


@dataclass(frozen=True, slots=True)
class Console:
    """The console's collaborators, handed to every page's routes."""

    sessions: Sessions
    stores: Stores
    mappings: MappingAdmin
    operator: Operator
    templates: jinja2.Environment

    def render(self, request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        csrf = self.sessions.csrf_of(request) or self.sessions.new_csrf()
        session = self.sessions.session_of(request)
        body = self.templates.get_template(name).render(
            request=request, csrf=csrf, csrf_field=CSRF_FIELD, session=session, nav=PAGES,
            path=request.url.path, **values)
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        self.sessions.ensure_csrf(response, request, csrf)
        return response


def see_other(url: str) -> RedirectResponse:
    """After a form post: the page to show (303, so a reload does not post again)."""
    return RedirectResponse(url, status_code=303)
