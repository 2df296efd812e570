"""The mapping service's admin API, as the console calls it (bearer token; the transport injected)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from services.console.ports import ChangeRefused


class ImportRefused(ChangeRefused):
    """A CSV import that applied nothing, with every bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class MappingAdmin:
    """`GET /mappings`, `GET /unmapped`, `PUT /mappings/...`, `POST /mappings/preview`, `POST /mappings/import`."""

    def __init__(self, http: httpx.AsyncClient, token: str, user: str = "console") -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}", "X-Shopsync-User": user}

    async def mappings(self, shop_id: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self._call("GET", "/mappings", params=_shop(shop_id))).json()
        return rows

    async def unmapped(self, shop_id: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self._call("GET", "/unmapped", params=_shop(shop_id))).json()
        return rows

    async def set(self, shop_id: str, seller_sku: str, product_code: str) -> dict[str, Any]:
        row: dict[str, Any] = (await self._call("PUT", _path(shop_id, seller_sku),
                                                json={"product_code": product_code})).json()
        return row

    async def preview(self, shop_id: str, seller_sku: str, product_code: str) -> dict[str, Any]:
        answer: dict[str, Any] = (await self._call("POST", "/mappings/preview", json={
            "shop_id": shop_id, "seller_sku": seller_sku, "product_code": product_code})).json()
        return answer

    async def import_csv(self, text: str) -> int:
        answer = await self._http.post("/mappings/import", content=text.encode(), headers=self._headers)
        if answer.status_code >= 400:
            doc = _json(answer)
            raise ImportRefused(doc.get("problems") or [str(doc.get("detail", answer.text))])
        imported: int = answer.json()["imported"]
        return imported

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = await self._http.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ChangeRefused(f"cannot reach the mapping service ({exc.__class__.__name__}): is `shopsync "
                                "mapping` running?") from None
        if answer.status_code >= 400:
            raise ChangeRefused(str(_json(answer).get("detail", answer.text)))
        return answer


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        doc = answer.json()
    except ValueError:
        return {"detail": answer.text}
    return doc if isinstance(doc, dict) else {"detail": answer.text}


def _path(shop_id: str, seller_sku: str) -> str:
    return f"/mappings/{quote(shop_id, safe='')}/{quote(seller_sku, safe='')}"


def _shop(shop_id: str | None) -> dict[str, str] | None:
    return {"shop_id": shop_id} if shop_id else None
