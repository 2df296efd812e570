"""Resolve the warehouse name a seller typed against the shop's SALES warehouses."""

from __future__ import annotations

from collections.abc import Sequence

from shared.tiktok.models import Warehouse

SALES = "SALES_WAREHOUSE"


class WarehouseNotFound(ValueError):
    """The typed name matches no sales warehouse; the message lists the names there are."""

    def __init__(self, typed: str, available: Sequence[str]) -> None:
        names = ", ".join(f'"{n}"' for n in available) or "(none)"
        super().__init__(f'No sales warehouse named "{typed}" in this TikTok shop. Available sales warehouses: '
                         f"{names}. Link again with one of these names, or leave the warehouse blank for all.")
        self.typed = typed
        self.available = list(available)


def resolve_warehouses(typed: str, warehouses: Sequence[Warehouse]) -> list[Warehouse]:
    """Sales warehouses whose name equals `typed` (trimmed, case-insensitive; names are not unique).

    A blank name means all warehouses: returns [] (no filter).
    """
    wanted = " ".join(typed.split()).casefold()
    if not wanted:
        return []
    sales = [w for w in warehouses if w.type == SALES]
    matches = [w for w in sales if " ".join(w.name.split()).casefold() == wanted]
    if not matches:
        raise WarehouseNotFound(typed.strip(), sorted({w.name for w in sales}))
    return matches
