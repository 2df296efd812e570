"""The mapping admin API (bearer token): mappings CRUD, CSV import/export, unmapped SKUs, change preview.

Handlers are thin: they parse the request, read the service from `request.app.state`, and answer with what the
pure functions of `services.mapping.reports` compute. `create_api` wires the routes, the token and the service.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.mapping.openapi import OPENAPI
from services.mapping.reports import mappings_of_shop, next_mapping, preview_change, unmapped_report
from services.mapping.service import MappingService
from services.mapping.validation import InvalidMapping, check_field, check_not_sku_id, parse_csv
from shared.envelope import rfc3339
from shared.health import readiness
from shared.mappings import Mapping, mapping_key, split_mapping_key


class MissingAdminToken(RuntimeError):
    """The admin API refuses to start without SHOPSYNC_ADMIN_TOKEN."""


def create_api(service: MappingService, admin_token: str,
               lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]] | None = None,
               ) -> Starlette:
    """The admin app over `service`; every mapping route requires `Authorization: Bearer <admin_token>`."""
    if not admin_token:
        raise MissingAdminToken("SHOPSYNC_ADMIN_TOKEN must be set: the mapping admin API requires a bearer token")
    guarded = [Middleware(RequireBearerToken, token=admin_token)]
    routes = [
        Route("/mappings", list_mappings, methods=["GET"], middleware=guarded),
        Route("/mappings/import", import_csv, methods=["POST"], middleware=guarded),
        Route("/mappings/preview", preview, methods=["POST"], middleware=guarded),
        Route("/mappings/{shop_id}/{seller_sku:path}", put_mapping, methods=["PUT"], middleware=guarded),
        Route("/mappings/{shop_id}/{seller_sku:path}", get_mapping, methods=["GET"], middleware=guarded),
        Route("/mappings/{shop_id}/{seller_sku:path}", delete_mapping, methods=["DELETE"], middleware=guarded),
        Route("/unmapped", unmapped, methods=["GET"], middleware=guarded),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
    ]
    app = Starlette(routes=routes, exception_handlers={InvalidMapping: invalid_mapping_answer}, lifespan=lifespan)
    app.state.service = service
    return app


class RequireBearerToken:
    """Route middleware: 401 unless the request carries the admin bearer token (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = Headers(scope=scope).get("authorization", "").encode()
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
        else:
            await _error(401, "unauthorized", "missing or wrong bearer token")(scope, receive, send)


async def invalid_mapping_answer(_: Request, exc: Exception) -> Response:
    """A rejected mapping write as `{"error": code, "detail": ...}` with its status."""
    assert isinstance(exc, InvalidMapping)  # registered for InvalidMapping only; Starlette types it as Exception
    answer = _error(exc.status, exc.code, exc.detail)
    if len(exc.problems) > 1:  # a CSV import with several bad lines: every one of them
        answer = JSONResponse({"error": exc.code, "detail": exc.detail, "problems": exc.problems},
                              status_code=exc.status)
    return answer


# ---- mappings ------------------------------------------------------------------------------------------------
async def list_mappings(request: Request) -> Response:
    mappings = _service(request).table.mappings
    return JSONResponse([_row(k, m) for k, m in mappings_of_shop(mappings, request.query_params.get("shop_id"))])


async def get_mapping(request: Request) -> Response:
    key = mapping_key(*_path_key(request))
    mapping = _service(request).table.mappings.get(key)
    if mapping is None:
        return _error(404, "not_found", f"no mapping for {key}")
    return JSONResponse(_row(key, mapping))


async def put_mapping(request: Request) -> Response:
    service = _service(request)
    shop_id, seller_sku = _path_key(request)
    code = check_field("product_code", (await _body_json(request)).get("product_code"))
    check_not_sku_id(service.state, shop_id, seller_sku)
    key = mapping_key(shop_id, seller_sku)
    mapping = next_mapping(service.table.mappings, key, code, rfc3339(time.time()), _user(request))
    await service.write_mapping(key, mapping)
    return JSONResponse(_row(key, mapping))


async def delete_mapping(request: Request) -> Response:
    service = _service(request)
    key = mapping_key(*_path_key(request))
    if key not in service.table.mappings:
        return _error(404, "not_found", f"no mapping for {key}")
    await service.write_mapping(key, None)
    return Response(status_code=204)


async def import_csv(request: Request) -> Response:
    service = _service(request)
    rows = parse_csv((await request.body()).decode("utf-8", "replace"), service.state)
    now = rfc3339(time.time())
    for row in rows:  # validated as a whole first: all-or-nothing
        key = mapping_key(row.shop_id, row.seller_sku)
        await service.write_mapping(key, next_mapping(service.table.mappings, key, row.product_code, now,
                                                      _user(request)))
    return JSONResponse({"imported": len(rows)})


# ---- reports -------------------------------------------------------------------------------------------------
async def unmapped(request: Request) -> Response:
    service = _service(request)
    report = unmapped_report(service.state.orders.values(), service.table.mappings,
                             request.query_params.get("shop_id"))
    return JSONResponse([asdict(entry) for entry in report])


async def preview(request: Request) -> Response:
    service = _service(request)
    doc = await _body_json(request)
    shop_id = check_field("shop_id", doc.get("shop_id"))
    seller_sku = check_field("seller_sku", doc.get("seller_sku"))
    check_not_sku_id(service.state, shop_id, seller_sku)  # what saving would refuse, said before it
    code = doc.get("product_code")
    product_code = None if code is None else check_field("product_code", code)
    answer = preview_change(service.state.affected(shop_id, seller_sku), service.table.mappings, shop_id,
                            seller_sku, product_code)
    return JSONResponse(asdict(answer))


# ---- operations ----------------------------------------------------------------------------------------------
async def openapi(_: Request) -> Response:
    return JSONResponse(OPENAPI)


async def healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    service = _service(request)
    return await readiness(service.producer, starting=not service.ready.is_set())


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_service(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---- request and response shapes -----------------------------------------------------------------------------
def _service(request: Request) -> MappingService:
    service: MappingService = request.app.state.service  # set once by create_api
    return service


async def _body_json(request: Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidMapping(400, "invalid_json", "body must be JSON") from None
    if not isinstance(doc, dict):
        raise InvalidMapping(400, "invalid_json", "body must be a JSON object")
    return doc


def _path_key(request: Request) -> tuple[str, str]:
    shop_id = check_field("shop_id", request.path_params["shop_id"])
    seller_sku = check_field("seller_sku", request.path_params["seller_sku"])
    return shop_id, seller_sku


def _user(request: Request) -> str:
    return request.headers.get("x-shopsync-user", "admin-api")


def _row(key: str, mapping: Mapping) -> dict[str, Any]:
    shop_id, seller_sku = split_mapping_key(key)
    return {"shop_id": shop_id, "seller_sku": seller_sku, **mapping.to_dict()}


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)
