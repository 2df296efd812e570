"""Mappings: unmapped seller SKUs first (with an inline "map to"), every mapping searchable and paged, a preview
before each save, CSV import (every bad line listed, nothing applied) and CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.console.mapping_admin import ImportRefused
from services.console.ports import ChangeRefused
from services.console.web import Console

PAGE_SIZE = 50


def matching(rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Mappings whose seller SKU, product code or shop id contains `query` (case-insensitive)."""
    q = query.strip().casefold()
    return [r for r in rows if not q or any(q in str(r[f]).casefold() for f in ("seller_sku", "product_code",
                                                                                 "shop_id"))]


def routes(console: Console) -> list[Route]:
    sessions, admin = console.sessions, console.mappings

    async def page(request: Request, status_code: int = 200, **values: Any) -> Response:
        query = request.query_params.get("q", "")
        try:
            page_no = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page_no = 1
        try:
            unmapped, rows = await admin.unmapped(), matching(await admin.mappings(), query)
        except ChangeRefused as exc:
            return console.render(request, "error.html", status_code=502, message=str(exc))
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        shown = rows[(page_no - 1) * PAGE_SIZE: page_no * PAGE_SIZE]
        values.setdefault("problem", "")
        values.setdefault("notice", "")
        values.setdefault("import_problems", [])
        return console.render(request, "mappings.html", status_code=status_code, unmapped=unmapped, rows=shown,
                              total=len(rows), q=query, page=page_no, pages=pages, **values)

    async def show(request: Request) -> Response:
        return await page(request)

    async def mapping_form(request: Request) -> tuple[str, str, str]:
        """The checked form's shop id, seller SKU and product code, trimmed."""
        posted = await sessions.checked_form(request)
        shop_id, seller_sku, code = (str(posted.get(f, "")).strip() for f in ("shop_id", "seller_sku", "product_code"))
        return shop_id, seller_sku, code

    async def preview(request: Request) -> Response:
        shop_id, seller_sku, code = await mapping_form(request)
        try:
            answer = await admin.preview(shop_id, seller_sku, code)
        except ChangeRefused as exc:
            return await page(request, status_code=400, problem=str(exc), sku=seller_sku)
        return console.render(request, "mapping_preview.html", shop_id=shop_id, seller_sku=seller_sku,
                              product_code=code, preview=answer)

    async def save(request: Request) -> Response:
        shop_id, seller_sku, code = await mapping_form(request)
        try:
            row = await admin.set(shop_id, seller_sku, code)
        except ChangeRefused as exc:
            return await page(request, status_code=422, problem=str(exc), sku=seller_sku)
        return await page(request, notice=f"{seller_sku} → {row['product_code']} saved (v{row['version']}); "
                                          "the orders waiting on it are re-emitted.")

    async def import_csv(request: Request) -> Response:
        posted = await sessions.checked_form(request)
        upload = posted.get("file")
        text = (await upload.read()).decode("utf-8", "replace") if upload is not None and not isinstance(
            upload, str) else str(posted.get("csv", ""))
        try:
            imported = await admin.import_csv(text)
        except ImportRefused as exc:
            return await page(request, status_code=400, import_problems=exc.problems,
                              problem=f"Nothing was imported: {len(exc.problems)} bad line(s).")
        return await page(request, notice=f"Imported {imported} mappings.")

    async def export(_: Request) -> Response:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["shop_id", "seller_sku", "product_code"])
        for row in await admin.mappings():
            writer.writerow([row["shop_id"], row["seller_sku"], row["product_code"]])
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="mappings.csv"'})

    return [Route("/mappings", show, methods=["GET"]), Route("/mappings/preview", preview, methods=["POST"]),
            Route("/mappings/save", save, methods=["POST"]), Route("/mappings/import", import_csv, methods=["POST"]),
            Route("/mappings/export.csv", export, methods=["GET"])]
