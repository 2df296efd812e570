"""In-memory stand-ins for the ports the services talk through (Kafka, TikTok, the store table), for tests that
need neither a broker nor the sandbox. One fake per port, shared by every test that needs it."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin.config_resource import ConfigResource
from aiokafka.errors import CommitFailedError

from services.webhook_gateway.publisher import PublishFailed
from shared.stores.crypto import TokenCipher
from shared.stores.model import LINKED, StoreRecord
from shared.stores.table import StoreTable
from shared.tiktok.errors import OtherError, PermissionDenied
from shared.tiktok.models import AuthorizedShop, ShopAuth, TokenGrant, Warehouse
from shared.tiktok.orders import TikTokOrder, parse_order

NOW = 1_800_000_000  # the fakes' clock: grants are dated from it
UPDATE_TIMES = itertools.count(1_700_000_000)  # TikTok `update_time`s, each newer than the last

OrderAnswer = Callable[[list[str]], list[dict[str, Any]] | Awaitable[list[dict[str, Any]]]]


# ---- the gateway's publisher ---------------------------------------------------------------------------------
@dataclass
class MemoryPublisher:
    """The gateway's `Publisher` in memory: records kept as (key, value, headers); `fail` makes it refuse."""

    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    fail: bool = False

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def readiness_problem(self) -> str | None:
        return "down" if self.fail else None

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if self.fail:
            raise PublishFailed("down")
        self.records.append((key, value, headers))


# ---- Kafka clients -------------------------------------------------------------------------------------------
class MemoryProducer:
    """A producer whose every send is acknowledged at once; the values sent are kept."""

    def __init__(self) -> None:
        self.values: list[bytes | None] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None, headers: Any = None
                   ) -> asyncio.Future[None]:
        self.values.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class RebalancedConsumer:
    """A consumer whose group rebalanced under it: it holds `assigned`, and every commit fails."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: object = None) -> None:
        raise CommitFailedError("the group has already rebalanced")


class FakeAdmin:
    """Answers like a broker holding `topics` (name → (replication factor, config)); records creates and alters.

    A topic in `unreadable` has its config describe answered with that (error code, message) instead."""

    def __init__(self, topics: dict[str, tuple[int, dict[str, str]]],
                 unreadable: dict[str, tuple[int, str]] | None = None) -> None:
        self.topics = topics
        self.unreadable = unreadable or {}
        self.created: list[Any] = []
        self.altered: list[ConfigResource] = []

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
        return [{"topic": n, "error_code": 0 if n in self.topics else 3,
                 "partitions": [{"partition": p, "replicas": list(range(self.topics[n][0]))} for p in range(3)]
                 if n in self.topics else []} for n in names]

    async def describe_configs(self, resources: list[ConfigResource]) -> list[SimpleNamespace]:
        def answer(name: str) -> tuple[int, str, int, str, list[tuple[str, str]]]:
            if name in self.unreadable:
                return (*self.unreadable[name], 2, name, [])
            return 0, "", 2, name, list(self.topics[name][1].items())
        return [SimpleNamespace(resources=[answer(r.name) for r in resources])]

    async def create_topics(self, new: list[Any], validate_only: bool = False) -> SimpleNamespace:
        if not validate_only:
            self.created.extend(new)
        return SimpleNamespace(topic_errors=[])

    async def alter_configs(self, resources: list[ConfigResource]) -> None:
        self.altered.extend(resources)


# ---- TikTok ----------------------------------------------------------------------------------------------------
US_STORE = AuthorizedShop("s1", "Sandbox US Store", "US", "LOCAL", "cipher-1", "C1")


def order_detail(order_id: str, **changes: Any) -> dict[str, Any]:
    """A Get Order Detail answer: awaiting shipment, seller shipping, one line of RED-L, dated now."""
    order = {"id": order_id, "status": "AWAITING_SHIPMENT", "update_time": next(UPDATE_TIMES), "warehouse_id": "w1",
             "shipping_type": "SELLER", "fulfillment_type": "FULFILLMENT_BY_SELLER",
             "line_items": [{"id": f"{order_id}-1", "sku_id": "k1", "seller_sku": "RED-L"}]}
    order.update(changes)
    return order


def every_order_found(ids: list[str]) -> list[dict[str, Any]]:
    return [order_detail(i) for i in ids]


def product_detail(product_id: str, status: str, seller_sku: str = "RED-S") -> dict[str, Any]:
    """A Get Product answer: one SKU with stock in warehouse W1."""
    return {"id": product_id, "status": status, "update_time": 1, "skus": [
        {"id": f"{product_id}01", "seller_sku": seller_sku, "inventory": [{"warehouse_id": "W1", "quantity": 5}]}]}


@dataclass
class FakeTikTok:
    """The TikTok client (`shared.tiktok.client.TikTokClient`) answered from fixed data; every call recorded.

    A code or refresh token is exchanged for a `TTP_…` grant dated from NOW (refreshes numbered: `TTP_access_new1`,
    …); Get Order Detail answers per shop by a function of the ids, which may raise (default: every id found);
    Get Product fails `product_failures` times, then answers a product in `product_status`.
    """

    shops: list[AuthorizedShop] = field(default_factory=lambda: [US_STORE])
    warehouses: list[Warehouse] = field(default_factory=lambda: [
        Warehouse("w1", "LA Warehouse", "SALES_WAREHOUSE", "ENABLED"),
        Warehouse("w2", "NJ Warehouse", "SALES_WAREHOUSE", "ENABLED")])
    refresh_fails_for: set[str] = field(default_factory=set)
    order_answers: dict[str, OrderAnswer] = field(default_factory=dict)
    product_status: str = "ACTIVATE"
    product_failures: int = 0
    refreshes: list[str] = field(default_factory=list)
    warehouse_requests: list[ShopAuth] = field(default_factory=list)
    order_calls: list[tuple[str, list[str]]] = field(default_factory=list)
    product_reads: list[tuple[str, str]] = field(default_factory=list)

    async def get_token(self, code: str) -> TokenGrant:
        return TokenGrant(f"TTP_access_{code}", NOW + 7 * 86400, f"TTP_refresh_{code}", NOW + 365 * 86400)

    async def refresh_token(self, refresh_token: str) -> TokenGrant:
        self.refreshes.append(refresh_token)
        if refresh_token in self.refresh_fails_for:
            raise PermissionDenied("refresh token revoked", code=105005)
        n = len(self.refreshes)
        return TokenGrant(f"TTP_access_new{n}", NOW + 7 * 86400, f"TTP_refresh_new{n}", NOW + 365 * 86400)

    async def get_authorized_shops(self, access_token: str) -> list[AuthorizedShop]:
        return self.shops

    async def get_warehouses(self, shop: ShopAuth) -> list[Warehouse]:
        self.warehouse_requests.append(shop)
        return self.warehouses

    async def get_order_detail(self, shop: ShopAuth, ids: list[str]) -> list[TikTokOrder]:
        self.order_calls.append((shop.shop_id, list(ids)))
        answer = self.order_answers.get(shop.shop_id, every_order_found)(ids)
        found = await answer if inspect.isawaitable(answer) else answer
        return [parse_order(order) for order in found]

    async def get_product(self, auth: ShopAuth, product_id: str) -> dict[str, Any]:
        self.product_reads.append((auth.shop_id, product_id))
        if self.product_failures:
            self.product_failures -= 1
            raise OtherError("product: bad request", code=12019000)
        return product_detail(product_id, self.product_status)


class FixedTokens:
    """The token keeper's `shop_auth`: every shop is linked, with the same token."""

    async def shop_auth(self, shop_id: str) -> ShopAuth:
        return ShopAuth(shop_id, "cipher", "token")


# ---- the store table -------------------------------------------------------------------------------------------
def linked_store(shop_id: str, cipher: TokenCipher, *, expires_at: int = 4_000_000_000,
                 **changes: Any) -> StoreRecord:
    """A linked store whose tokens `TTP_access_<shop_id>` / `TTP_refresh_<shop_id>` are encrypted with `cipher`."""
    record = StoreRecord(nickname=f"Store {shop_id}", status=LINKED, shop_id=shop_id, shop_cipher="c",
                         access_token_enc=cipher.encrypt(f"TTP_access_{shop_id}"),
                         refresh_token_enc=cipher.encrypt(f"TTP_refresh_{shop_id}"),
                         access_token_expires_at=expires_at, refresh_token_expires_at=4_000_000_000)
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def store_table(*stores: StoreRecord) -> StoreTable:
    """A store table holding `stores`, as if read from the topic."""
    table = StoreTable()
    table.stores = {s.shop_id: s for s in stores}
    return table


@dataclass
class RecordingStoreWriter:
    """The store table's writer: every record put is kept, in order."""

    written: list[StoreRecord] = field(default_factory=list)

    async def put(self, store: StoreRecord) -> None:
        self.written.append(store)


# ---- store sync ------------------------------------------------------------------------------------------------
class RecordingInventory:
    """Store sync's inventory: every recheck asked for is kept (shop, seller SKU, cause)."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self.rechecks: list[tuple[str, str, str]] = []

    def recheck(self, shop_id: str, seller_sku: str, cause: str) -> bool:
        self.rechecks.append((shop_id, seller_sku, cause))
        return True
