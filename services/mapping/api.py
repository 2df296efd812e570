"""The mapping admin API (bearer token): mappings CRUD, CSV import/export, unmapped SKUs, change preview."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.mapping.enrich import content_hash, enrich, line_mapping
from services.mapping.openapi import OPENAPI
from services.mapping.service import MappingService
from services.mapping.validation import InvalidMapping, check_field, check_not_sku_id, parse_csv
from shared.envelope import rfc3339
from shared.health import readiness
from shared.mappings import Mapping, mapping_key, split_mapping_key

Handler = Callable[[Request], Awaitable[Response]]
SAMPLE_ORDERS = 5


class MissingAdminToken(RuntimeError):
    """The admin API refuses to start without SHOPSYNC_ADMIN_TOKEN."""


def create_api(service: MappingService, admin_token: str,
               lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]] | None = None) -> Starlette:
    if not admin_token:
        raise MissingAdminToken("SHOPSYNC_ADMIN_TOKEN must be set: the mapping admin API requires a bearer token")
    expected = f"Bearer {admin_token}".encode()

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return _error(401, "unauthorized", "missing or wrong bearer token")
            try:
                return await handler(request)
            except InvalidMapping as exc:
                return _error(exc.status, exc.code, exc.detail)
        return endpoint

    async def body_json(request: Request) -> dict[str, Any]:
        try:
            doc = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise InvalidMapping(400, "invalid_json", "body must be JSON") from None
        if not isinstance(doc, dict):
            raise InvalidMapping(400, "invalid_json", "body must be a JSON object")
        return doc

    def path_key(request: Request) -> tuple[str, str]:
        shop_id = check_field("shop_id", request.path_params["shop_id"])
        seller_sku = check_field("seller_sku", request.path_params["seller_sku"])
        return shop_id, seller_sku

    def next_version(key: str) -> int:
        current = service.table.mappings.get(key)
        return current.version + 1 if current else 1

    def who(request: Request) -> str:
        return request.headers.get("x-shopsync-user", "admin-api")

    async def put_mapping(request: Request) -> Response:
        shop_id, seller_sku = path_key(request)
        code = check_field("product_code", (await body_json(request)).get("product_code"))
        check_not_sku_id(service.state, shop_id, seller_sku)
        key = mapping_key(shop_id, seller_sku)
        mapping = Mapping(code, rfc3339(time.time()), who(request), next_version(key))
        await service.write_mapping(key, mapping)
        return JSONResponse(_row(key, mapping))

    async def get_mapping(request: Request) -> Response:
        key = mapping_key(*path_key(request))
        mapping = service.table.mappings.get(key)
        if mapping is None:
            return _error(404, "not_found", f"no mapping for {key}")
        return JSONResponse(_row(key, mapping))

    async def delete_mapping(request: Request) -> Response:
        key = mapping_key(*path_key(request))
        if key not in service.table.mappings:
            return _error(404, "not_found", f"no mapping for {key}")
        await service.write_mapping(key, None)
        return Response(status_code=204)

    async def list_mappings(request: Request) -> Response:
        shop = request.query_params.get("shop_id")
        rows = [_row(k, m) for k, m in sorted(service.table.mappings.items())
                if shop is None or split_mapping_key(k)[0] == shop]
        return JSONResponse(rows)

    async def import_csv(request: Request) -> Response:
        rows = parse_csv((await request.body()).decode("utf-8", "replace"), service.state)
        now = rfc3339(time.time())
        for row in rows:  # validated as a whole first: all-or-nothing
            key = mapping_key(row.shop_id, row.seller_sku)
            await service.write_mapping(key, Mapping(row.product_code, now, who(request), next_version(key)))
        return JSONResponse({"imported": len(rows)})

    async def unmapped(request: Request) -> Response:
        shop = request.query_params.get("shop_id")
        waiting: dict[tuple[str, str, str], dict[str, Any]] = {}
        for order in service.state.orders.values():
            if shop is not None and order.shop_id != shop:
                continue
            for line in order.lines:
                _, status, _ = line_mapping(order.shop_id, line.seller_sku, service.table.mappings)
                if status == "mapped":
                    continue
                entry = waiting.setdefault((order.shop_id, line.seller_sku, status), {
                    "shop_id": order.shop_id, "seller_sku": line.seller_sku, "mapping_status": status,
                    "product_name": line.product_name, "sku_id": line.sku_id, "orders_waiting": 0, "order_ids": []})
                if order.order_id not in entry["order_ids"]:
                    entry["orders_waiting"] += 1
                    if len(entry["order_ids"]) < SAMPLE_ORDERS:
                        entry["order_ids"].append(order.order_id)
        rows = sorted(waiting.values(), key=lambda e: (-e["orders_waiting"], e["shop_id"], e["seller_sku"]))
        return JSONResponse(rows)

    async def preview(request: Request) -> Response:
        doc = await body_json(request)
        shop_id = check_field("shop_id", doc.get("shop_id"))
        seller_sku = check_field("seller_sku", doc.get("seller_sku"))
        code = doc.get("product_code")
        key = mapping_key(shop_id, seller_sku)
        view = dict(service.table.mappings)
        if code is None:
            view.pop(key, None)
        else:
            view[key] = Mapping(check_field("product_code", code), "", "", next_version(key))
        affected = service.state.affected(shop_id, seller_sku)
        changed = sum(1 for o in affected
                      if content_hash(enrich(o, view)) != content_hash(enrich(o, service.table.mappings)))
        return JSONResponse({"mapping_key": key, "open_orders_with_sku": len(affected), "would_reemit": changed})

    async def openapi(_: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        return await readiness(service.producer, starting=not service.ready.is_set())

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/mappings", guarded(list_mappings), methods=["GET"]),
        Route("/mappings/import", guarded(import_csv), methods=["POST"]),
        Route("/mappings/preview", guarded(preview), methods=["POST"]),
        Route("/mappings/{shop_id}/{seller_sku:path}", guarded(put_mapping), methods=["PUT"]),
        Route("/mappings/{shop_id}/{seller_sku:path}", guarded(get_mapping), methods=["GET"]),
        Route("/mappings/{shop_id}/{seller_sku:path}", guarded(delete_mapping), methods=["DELETE"]),
        Route("/unmapped", guarded(unmapped), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _row(key: str, mapping: Mapping) -> dict[str, Any]:
    shop_id, seller_sku = split_mapping_key(key)
    return {"shop_id": shop_id, "seller_sku": seller_sku, **mapping.to_dict()}


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)
