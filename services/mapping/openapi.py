"""The admin API's OpenAPI 3.1 document (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_MAPPING = {"$ref": "#/components/schemas/Mapping"}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    texts = {400: "Invalid input", 401: "Missing or wrong bearer token", 404: "No such mapping",
             422: "A TikTok SKU ID was used instead of the seller SKU"}
    for code in (401, *codes):
        out[str(code)] = {"description": texts[code], "content": {"application/json": {"schema": _ERROR}}}
    return out


_KEY_PARAMS = [
    {"name": "shop_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "seller_sku", "in": "path", "required": True, "schema": {"type": "string"},
     "description": "The seller SKU (\"seller ID\") set on TikTok — never the TikTok SKU ID."},
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shopsync mapping admin API", "version": "1.0.0",
             "description": "Seller SKU → OMS product code mappings. Every call needs `Authorization: Bearer "
                            "<SHOPSYNC_ADMIN_TOKEN>`."},
    "security": [{"bearer": []}],
    "paths": {
        "/mappings": {"get": {
            "summary": "List mappings",
            "parameters": [{"name": "shop_id", "in": "query", "schema": {"type": "string"}}],
            "responses": _responses({"description": "Mappings", "content": {"application/json": {
                "schema": {"type": "array", "items": _MAPPING}}}})}},
        "/mappings/{shop_id}/{seller_sku}": {
            "parameters": _KEY_PARAMS,
            "put": {"summary": "Create or change a mapping; affected open orders are re-emitted",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["product_code"],
                        "properties": {"product_code": {"type": "string", "minLength": 1}}}}}},
                    "responses": _responses({"description": "Stored", "content": {"application/json": {
                        "schema": _MAPPING}}}, 400, 422)},
            "get": {"summary": "Get a mapping", "responses": _responses({"description": "The mapping", "content": {
                "application/json": {"schema": _MAPPING}}}, 404)},
            "delete": {"summary": "Delete a mapping; affected open orders become unmapped again",
                       "responses": {"204": {"description": "Deleted"}, "401": {"description": "Unauthorized"},
                                     "404": {"description": "No such mapping"}}},
        },
        "/mappings/import": {"post": {
            "summary": "Import a CSV (header shop_id,seller_sku,product_code); all rows or none",
            "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
            "responses": _responses({"description": "Imported", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"imported": {"type": "integer"}}}}}}, 400, 422)}},
        "/mappings/preview": {"post": {
            "summary": "Dry run: how many open orders a change would re-emit",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["shop_id", "seller_sku"],
                "properties": {"shop_id": {"type": "string"}, "seller_sku": {"type": "string"},
                               "product_code": {"type": ["string", "null"], "description": "null = delete"}}}}}},
            "responses": _responses({"description": "Preview", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"mapping_key": {"type": "string"},
                                                 "open_orders_with_sku": {"type": "integer"},
                                                 "would_reemit": {"type": "integer"}}}}}}, 400)}},
        "/unmapped": {"get": {
            "summary": "Seller SKUs on open orders with no mapping (or no seller SKU at all)",
            "parameters": [{"name": "shop_id", "in": "query", "schema": {"type": "string"}}],
            "responses": _responses({"description": "Unmapped SKUs", "content": {"application/json": {"schema": {
                "type": "array", "items": {"type": "object", "properties": {
                    "shop_id": {"type": "string"}, "seller_sku": {"type": "string"},
                    "mapping_status": {"enum": ["unmapped", "missing_seller_sku"]},
                    "product_name": {"type": "string"}, "sku_id": {"type": "string"},
                    "orders_waiting": {"type": "integer"},
                    "order_ids": {"type": "array", "items": {"type": "string"}}}}}}}})}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Mapping": {"type": "object", "required": ["shop_id", "seller_sku", "product_code", "version"],
                        "properties": {"shop_id": {"type": "string"}, "seller_sku": {"type": "string"},
                                       "product_code": {"type": "string"}, "updated_at": {"type": "string"},
                                       "updated_by": {"type": "string"}, "version": {"type": "integer"}}},
            "Error": {"type": "object", "required": ["error", "detail"],
                      "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}},
        },
    },
}
