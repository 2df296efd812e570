"""What TikTok's Update Inventory accepts, as pure decisions (API facts §9.2, §10.1, §10.2).

Quantities: TikTok's current docs say 1–99,999, older docs allow 0 for "out of stock". shopsync never sends more
than 99,999 (the result says it clamped) and sends 0 for out of stock; when TikTok refuses the 0 (12052055 /
12019024) the result is `inventory:zero_not_allowed`, a permanent answer with a fix for the seller.

Product status: the docs say only ACTIVATE products take stock updates, TikTok's Node SDK says anything but FREEZE
and DELETED. So FREEZE / DELETED are never pushed, ACTIVATE always is, and the other statuses are tried until TikTok
answers 12052901 for that status in that shop (`inventory:product_status_not_allowed`, naming the status).
"""

from __future__ import annotations

from collections.abc import Collection

MAX_QUANTITY = 99_999
ZERO_REFUSED_CODES = frozenset({12052055, 12019024})
STATUS_NOT_ALLOWED_CODE = 12052901
ALWAYS_UPDATABLE = "ACTIVATE"
NEVER_UPDATABLE = frozenset({"FREEZE", "DELETED"})
ZERO_NOT_ALLOWED = "inventory:zero_not_allowed"
STATUS_NOT_ALLOWED = "inventory:product_status_not_allowed"


def clamp_quantity(wanted: int) -> tuple[int, bool]:
    """(quantity to send, whether it was clamped to TikTok's maximum); negative wants become 0."""
    wanted = max(wanted, 0)
    return (MAX_QUANTITY, True) if wanted > MAX_QUANTITY else (wanted, False)


def status_allows_update(status: str, refused: Collection[str] = ()) -> bool:
    """Whether to send Update Inventory for a product in `status`; `refused` are statuses TikTok answered
    12052901 for in this shop."""
    if status == ALWAYS_UPDATABLE:
        return True
    return status not in NEVER_UPDATABLE and status not in refused


def rejection_reason(code: int | None, quantity: int) -> str:
    """The machine-readable reason for an Update Inventory refusal of one SKU."""
    if code in ZERO_REFUSED_CODES and quantity == 0:
        return ZERO_NOT_ALLOWED
    if code == STATUS_NOT_ALLOWED_CODE:
        return STATUS_NOT_ALLOWED
    return f"inventory:rejected:{code}"


def zero_not_allowed_detail(seller_sku: str, shop_id: str, buffer: int, code: int | None) -> str:
    return (f"TikTok refused quantity 0 for seller SKU {seller_sku!r} (code {code}; it accepts 1-{MAX_QUANTITY:,} "
            "here). To stop selling it while it is out of stock, deactivate the SKU or product in TikTok Seller "
            "Center; or keep at least one unit more in the OMS than the store's inventory buffer (now "
            f"{buffer}, `shopsync stores set {shop_id} --inventory-buffer N`) so the quantity never reaches 0. "
            "Not retried: the next OMS quantity above 0 is pushed as usual.")


def status_not_allowed_detail(seller_sku: str, product_id: str, status: str) -> str:
    return (f"TikTok does not take stock updates for product {product_id} (seller SKU {seller_sku!r}) in status "
            f"{status}: activate the product in TikTok Seller Center; its stock is pushed again when the product "
            "changes.")


def clamp_note(requested: int) -> str:
    return f"the OMS quantity {requested:,} is above TikTok's maximum; sent {MAX_QUANTITY:,}"
