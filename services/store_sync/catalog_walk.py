"""Reading a shop's products from Search Products, however large the shop (API facts §10.5).

Search Products serves at most 10,000 results for one filter (12052180 past that). A shop within the cap is read
page by page. A larger one is read the cheaper of two ways:

- by the seller SKUs that have a mapping (`seller_skus` filter, 10 a call): all store sync needs (`partial`: the
  catalog then holds the mapped SKUs only, and a new mapping's SKU is looked up when it is first pushed);
- by `update_time` windows, each bisected until it holds at most 10,000 products, walked oldest first (a product
  updated during the walk moves to the newest window, walked last, so it is not missed).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

SEARCH_CAP = 10_000
PAGE_SIZE = 100
SELLER_SKU_CHUNK = 10
PROBES_PER_WINDOW = 2  # a bisection costs about two one-result probes per final window
Strategy = Literal["all", "seller_skus", "windows"]
# (body, page_size, page_token) -> (products, next_page_token, total_count)
PageFn = Callable[[dict[str, Any], int, str], Awaitable[tuple[list[dict[str, Any]], str, int]]]


class CatalogTooDense(Exception):
    """More than 10,000 products share one `update_time` second: windows cannot split them."""


@dataclass(slots=True)
class Walk:
    products: list[dict[str, Any]]
    strategy: Strategy
    calls: int

    @property
    def partial(self) -> bool:
        """Only the mapped seller SKUs were read."""
        return self.strategy == "seller_skus"


def choose_strategy(total: int, mapped: int) -> Strategy:
    """Which walk reads a shop of `total` products with `mapped` mapped seller SKUs in the fewest calls."""
    if total <= SEARCH_CAP:
        return "all"
    by_sku = math.ceil(mapped / SELLER_SKU_CHUNK)
    by_window = math.ceil(total / PAGE_SIZE) + PROBES_PER_WINDOW * math.ceil(total / SEARCH_CAP)
    return "seller_skus" if by_sku <= by_window else "windows"


async def walk_catalog(page: PageFn, mapped: Sequence[str], *, now: int) -> Walk:
    """Every product store sync needs from one shop (see the module docstring)."""
    first, token, total = await page({}, PAGE_SIZE, "")
    strategy = choose_strategy(total, len(mapped))
    if strategy == "all":
        products, calls = await _follow(page, {}, first, token)
        return Walk(products, strategy, calls + 1)
    if strategy == "seller_skus":
        products, calls = await by_seller_skus(page, mapped)
        return Walk(products, strategy, calls + 1)
    products, calls = await by_windows(page, 0, now + 86_400)
    return Walk(products, strategy, calls + 1)


async def by_seller_skus(page: PageFn, seller_skus: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
    """Products holding any of `seller_skus`, 10 SKUs a search; (products, calls)."""
    wanted = sorted(set(seller_skus))
    found: dict[str, dict[str, Any]] = {}
    calls = 0
    for i in range(0, len(wanted), SELLER_SKU_CHUNK):
        products, n = await _follow(page, {"seller_skus": wanted[i:i + SELLER_SKU_CHUNK]})
        calls += n
        found.update((str(p.get("id")), p) for p in products)
    return list(found.values()), calls


async def by_windows(page: PageFn, low: int, high: int) -> tuple[list[dict[str, Any]], int]:
    """Every product with `low <= update_time <= high`, window by window; (products, calls)."""
    windows, calls = await _split(page, low, high)
    found: dict[str, dict[str, Any]] = {}
    for lo, hi in windows:
        products, n = await _follow(page, {"update_time_ge": lo, "update_time_le": hi})
        calls += n
        found.update((str(p.get("id")), p) for p in products)
    return list(found.values()), calls


async def _split(page: PageFn, low: int, high: int) -> tuple[list[tuple[int, int]], int]:
    """Ascending windows covering [low, high], each within the cap; (windows, probe calls)."""
    _, _, total = await page({"update_time_ge": low, "update_time_le": high}, 1, "")
    if total <= SEARCH_CAP:
        return [(low, high)], 1
    if low >= high:
        raise CatalogTooDense(f"{total} products were updated in the same second ({low})")
    mid = (low + high) // 2
    left, a = await _split(page, low, mid)
    right, b = await _split(page, mid + 1, high)
    return left + right, 1 + a + b


async def _follow(page: PageFn, body: dict[str, Any], first: list[dict[str, Any]] | None = None,
                  token: str = "") -> tuple[list[dict[str, Any]], int]:
    """All pages of one filter (starting from an already fetched first page when given); (products, calls)."""
    calls = 0
    if first is None:
        first, token, _ = await page(body, PAGE_SIZE, "")
        calls = 1
    products = list(first)
    while token:
        more, token, _ = await page(body, PAGE_SIZE, token)
        products += more
        calls += 1
    return products, calls
