"""Validating mapping writes: precise 400s for empty fields, 422 for the SKU-ID-instead-of-seller-SKU mistake."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from services.mapping.state import OrderState

CSV_HEADER = ["shop_id", "seller_sku", "product_code"]


class InvalidMapping(ValueError):
    def __init__(self, status: int, code: str, detail: str, problems: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.problems = problems if problems is not None else [detail]


@dataclass(frozen=True, slots=True)
class MappingInput:
    shop_id: str
    seller_sku: str
    product_code: str


def check_field(name: str, value: object, where: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidMapping(400, "empty_field", f"{where}{name} must be a non-empty string")
    if value != value.strip():
        raise InvalidMapping(400, "invalid_field", f"{where}{name} must not start or end with spaces")
    return value


def check_not_sku_id(state: OrderState, shop_id: str, seller_sku: str, where: str = "") -> None:
    """Reject a TikTok SKU ID used as the seller SKU, naming the product and the seller SKU to use instead."""
    known = state.sku_ids.get(shop_id, {}).get(seller_sku)
    if known is None or state.is_known_seller_sku(shop_id, seller_sku):
        return
    real, product = known
    if real:
        hint = f'map its seller SKU "{real}" instead'
    else:
        hint = "its seller SKU is empty on TikTok: fill it in on TikTok Shop, then map that"
    raise InvalidMapping(422, "sku_id_not_seller_sku",
                         f'{where}"{seller_sku}" is the TikTok SKU ID of "{product}", not a seller SKU; {hint}.')


def parse_csv(text: str, state: OrderState) -> list[MappingInput]:
    """All rows, or an InvalidMapping naming every bad line with its field (line 1 is the header): its `detail` is
    the first problem, `problems` all of them, so a seller fixes the file in one go."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != CSV_HEADER:
        raise InvalidMapping(400, "invalid_csv", f"line 1: the header must be {','.join(CSV_HEADER)}")
    parsed = []
    problems: list[InvalidMapping] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            parsed.append(_parse_row(row, f"line {number}: ", state))
        except InvalidMapping as exc:
            problems.append(exc)
    if problems:
        first = problems[0]
        raise InvalidMapping(first.status, first.code, first.detail, [p.detail for p in problems])
    return parsed


def _parse_row(row: list[str], where: str, state: OrderState) -> MappingInput:
    if len(row) != 3:
        raise InvalidMapping(400, "invalid_csv", f"{where}expected 3 fields, found {len(row)}")
    shop_id, seller_sku, code = (check_field(n, v.strip() if n == "shop_id" else v, where)
                                 for n, v in zip(CSV_HEADER, row, strict=True))
    check_not_sku_id(state, shop_id, seller_sku, where)
    return MappingInput(shop_id, seller_sku, code)
