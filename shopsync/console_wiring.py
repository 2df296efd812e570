"""The console's collaborators, made of the same pieces the CLI uses: the store table and store commands (the
stores owner), `shopsync sync`'s order search, `shopsync explain`'s timeline and verdict, `shopsync dlq`, `shopsync
replay`, and the services' health URLs. `shopsync console` builds them; the console app only sees the ports."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from services.console.ports import (
    ChangeRefused,
    DeadLetterRow,
    Explained,
    Health,
    LagRow,
    LinkOutcome,
    OrderUpdate,
    PendingLink,
    ReplayCount,
    SkipGroup,
    StorePatch,
)
from shared.envelope import rfc3339
from shared.kafka import create_admin, create_consumer, partitions_of, read_to_end
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.commands import FAILED, BeginLink, CommandResult, OwnerNotAnswering, SetStore, open_store_commands
from shared.stores.crypto import MissingSecretKey, TokenCipher
from shared.stores.linking import LinkError, new_pending_link
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.stores.table import StoreTable
from shared.topics import STORE_RESULTS, SYNC_RESULTS, topic_name
from shopsync.commands.explain import explain_order, summary_of
from shopsync.commands.stores import StoreNotChanged, change_store
from shopsync.commands.sync import StoreOrdersNotFound, update_store_orders
from shopsync.operator.dlq import list_dead_letters
from shopsync.operator.dlq import redrive as redrive_letters
from shopsync.operator.inventory_status import inventory_status
from shopsync.operator.replay import Selection
from shopsync.operator.replay import replay as run_replay
from shopsync.operator.verdict import reason_fix

log = get_logger("console")
GROUPS = ("shopsync-order-ingest", "shopsync-mapping", "shopsync-audit", "shopsync-stores",
          "shopsync-store-sync-shipments", "shopsync-store-sync-inventory", "shopsync-store-sync-webhooks")
RECENT_RESULTS = 200  # sync outcomes the Sync page shows
KEPT_LINKS = 500  # connections begun that the console remembers (oldest forgotten first)


class LinkResults:
    """Follows `shopsync.store-results` from its end: the owner's answers to the links the console began (a failed
    or choice-needing `link` is answered under its pending key)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.answers: dict[str, CommandResult] = {}

    async def follow(self, stop: asyncio.Event) -> None:
        consumer = create_consumer(self._settings, None)
        await consumer.start()
        try:
            name = topic_name(STORE_RESULTS, self._settings.shopsync_topic_prefix)
            partitions = [TopicPartition(name, p) for p in sorted(await partitions_of(consumer, name))]
            consumer.assign(partitions)
            for tp, end in (await consumer.end_offsets(partitions)).items():
                consumer.seek(tp, end)
            while not stop.is_set():
                try:
                    batches = await consumer.getmany(timeout_ms=300)
                except KafkaError as exc:
                    log.warning("store_results_read_failed", error=exc.__class__.__name__)
                    await asyncio.sleep(1)
                    continue
                for records in batches.values():
                    for record in records:
                        self._note(record.value)
        finally:
            await consumer.stop()

    def _note(self, value: bytes | None) -> None:
        try:
            result = CommandResult.from_json(value)
        except (ValueError, TypeError):
            return
        if result.kind == "link" and result.key.startswith(PENDING_KEY_PREFIX):
            self.answers[result.key.removeprefix(PENDING_KEY_PREFIX)] = result


class OwnerStores:
    """The Stores port: the followed table, and the stores owner's commands (as `shopsync stores` sends them)."""

    def __init__(self, settings: Settings, table: StoreTable, results: LinkResults) -> None:
        self._settings = settings
        self.table = table
        self._results = results
        self._links: OrderedDict[str, PendingLink] = OrderedDict()
        self._updates: OrderedDict[str, OrderUpdate] = OrderedDict()
        self._running: set[asyncio.Task[None]] = set()

    def list(self) -> list[StoreRecord]:
        return list(self.table.stores.values())

    async def change(self, shop_id: str, patch: StorePatch) -> str:
        def command(store: StoreRecord) -> SetStore:
            return SetStore(shop_id=store.shop_id, based_on=store.revision, auto_sync_orders=patch.auto_sync_orders,
                            auto_sync_shipments=patch.auto_sync_shipments,
                            auto_sync_inventory=patch.auto_sync_inventory, inventory_buffer=patch.inventory_buffer)

        try:
            store, result = await change_store(self._settings, shop_id, command, read=self._read,
                                               requested_by="console")
        except StoreNotChanged as exc:
            raise ChangeRefused(str(exc)) from None
        if not result.ok:
            raise ChangeRefused(result.message or result.reason)
        if result.revision is not None:  # show the page after the change, not before it
            with contextlib.suppress(TimeoutError):
                await self.table.wait_for_revision(store.shop_id, result.revision - 1, 5.0)
        return (f"{store.nickname} already has these settings." if result.status == "unchanged"
                else f"Updated {store.nickname}.")

    async def _read(self, _: Settings, shop: str) -> StoreRecord:
        store = self.table.find(shop)
        if store is None:
            raise StoreNotChanged(f"unknown shop {shop!r}")
        return store

    async def begin_link(self, nickname: str, warehouse: str, region: str) -> PendingLink:
        settings = self._settings
        if not settings.tiktok_service_id:
            raise ChangeRefused("TIKTOK_SERVICE_ID is not set (Partner Center → your app → service id)")
        try:
            record, url = new_pending_link(settings, nickname, warehouse, region=region)
            async with open_store_commands(settings, "console") as commands:
                result = await commands.request(BeginLink(record=record))
        except (LinkError, OwnerNotAnswering) as exc:
            raise ChangeRefused(str(exc)) from None
        if not result.ok:
            raise ChangeRefused(result.message or result.reason)
        link = PendingLink(record.state, url, record.nickname, record.warehouse_name, record.region, time.time())
        self._links[link.state] = link
        while len(self._links) > KEPT_LINKS:
            self._links.popitem(last=False)
        return link

    def link_outcome(self, state: str) -> LinkOutcome | None:
        link = self._links.get(state)
        if link is None:
            return None
        answer = self._results.answers.get(state)
        if answer is not None and answer.status == FAILED and answer.reason == "warehouse_not_found":
            return LinkOutcome(link, "warehouse_not_found", answer.message, typed=link.warehouse,
                               warehouses=answer.warehouses)
        if answer is not None and answer.status == FAILED:
            return LinkOutcome(link, "failed", answer.message)
        if answer is not None:
            return LinkOutcome(link, "choice_needed", "This authorization covers several shops: pick the one to "
                               "link on the page TikTok sent you back to.")
        linked = next((s for s in self.table.stores.values() if s.nickname == link.nickname
                       and s.authorized_at >= int(link.begun_at) and s.is_active), None)
        if linked is not None:
            names = ", ".join(dict.fromkeys(linked.warehouse_names)) or "all warehouses"
            return LinkOutcome(link, "linked", f'"{linked.nickname}" is linked to TikTok shop "{linked.shop_name}" '
                               f"({linked.shop_id}). Orders from {names} will be synced.")
        return LinkOutcome(link, "waiting")

    def start_update(self, shop_id: str, since_s: float) -> OrderUpdate:
        """Start `shopsync sync`'s search for the store's orders; its progress is `update(job_id)`."""
        store = self.table.find(shop_id)
        if store is None:
            raise ChangeRefused(f"unknown shop {shop_id!r}")
        job = OrderUpdate(uuid.uuid4().hex, store.nickname)
        self._updates[job.job_id] = job
        while len(self._updates) > KEPT_LINKS:
            self._updates.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._update(job, store, int(time.time() - since_s)))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return job

    def update(self, job_id: str) -> OrderUpdate | None:
        return self._updates.get(job_id)

    async def _update(self, job: OrderUpdate, store: StoreRecord, since: int) -> None:
        def found(_: str) -> None:
            job.found += 1

        try:
            cipher = TokenCipher(self._settings.shopsync_secret_key.get_secret_value())
            counts = await update_store_orders(self._settings, self.table, store, since, cipher,
                                               requested_by="console", on_order=found)
            job.found = int(counts["found"])
        except (StoreOrdersNotFound, MissingSecretKey) as exc:
            job.problem = str(exc)
        except Exception as exc:  # the page says it failed; the log has the rest
            log.exception("store_orders_update_failed", shop_id=store.shop_id)
            job.problem = f"the search failed ({exc.__class__.__name__}); see the console's log"
        finally:
            job.done = True

    async def aclose(self) -> None:
        """Stop the updates still running (the console is stopping)."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


class OperatorTools:
    """The Operator port: `explain`, the audit's skipped orders, `dlq`, `replay`, lag per group, health."""

    def __init__(self, settings: Settings, table: StoreTable, health_urls: list[tuple[str, str]]) -> None:
        self._settings = settings
        self._table = table
        self._health_urls = health_urls

    async def explain(self, order_id: str) -> Explained:
        try:
            timeline, verdict = await explain_order(self._settings, order_id, None, self._table.stores)
        except httpx.HTTPError as exc:
            raise ChangeRefused(f"cannot reach the audit service at {self._settings.shopsync_audit_url} "
                                f"({exc.__class__.__name__}): is `shopsync audit` running?") from None
        return Explained(order_id, [{**e, "summary": summary_of(e)} for e in timeline], verdict)

    async def skipped_since(self, since_s: float) -> list[SkipGroup]:
        try:
            async with httpx.AsyncClient(base_url=self._settings.shopsync_audit_url, timeout=10) as http:
                answer = await http.get("/skipped", params={"since": rfc3339(time.time() - since_s)})
                answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise ChangeRefused(f"cannot reach the audit service ({exc.__class__.__name__})") from None
        return group_skipped(answer.json(), self._table.stores)

    async def dead_letters(self) -> list[DeadLetterRow]:
        return [DeadLetterRow(i.letter.at, i.letter.reason, i.letter.source_topic,
                              (i.letter.key or b"").decode(errors="replace"), i.redriven)
                for i in await list_dead_letters(self._settings)]

    async def redrive(self, reason: str, dry_run: bool) -> int:
        items = [i for i in await list_dead_letters(self._settings)
                 if not i.redriven and i.letter.reason.startswith(reason)]
        return len(items) if dry_run else await redrive_letters(self._settings, items)

    async def replay(self, shop_id: str | None, from_s: float | None, only_incomplete: bool,
                     dry_run: bool) -> ReplayCount:
        selection = Selection(shop_id, int(from_s * 1000) if from_s is not None else None, None, None,
                              only_incomplete)
        summary = await run_replay(self._settings, selection, dry_run=dry_run)
        return ReplayCount(summary.selected, summary.changed, summary.replayed, dry_run)

    async def lag(self) -> list[LagRow]:
        prefix = self._settings.shopsync_topic_prefix
        admin = create_admin(self._settings)
        consumer = create_consumer(self._settings, None)
        await admin.start()
        await consumer.start()
        try:
            rows = []
            for group in GROUPS:
                committed = await admin.list_consumer_group_offsets(topic_name(group, prefix))
                if not committed:
                    continue
                ends = await consumer.end_offsets(list(committed))
                rows.append(LagRow(group, sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items()
                                              if meta.offset >= 0)))
            return rows
        finally:
            await consumer.stop()
            await admin.close()

    async def health(self) -> list[Health]:
        async with httpx.AsyncClient(timeout=2) as http:
            async def up(url: str) -> bool:
                try:
                    return (await http.get(url)).status_code == 200
                except httpx.HTTPError:
                    return False

            found = await asyncio.gather(*(up(url) for _, url in self._health_urls))
        return [Health(name, url, ok) for (name, url), ok in zip(self._health_urls, found, strict=True)]

    async def sync_results(self) -> list[dict[str, Any]]:
        recent: list[dict[str, Any]] = []
        async for record in read_to_end(self._settings, SYNC_RESULTS):
            if record.value is None:
                continue
            doc = orjson.loads(record.value)
            recent.append({**doc, "key": (record.key or b"").decode(errors="replace"),
                           "at": doc.get("synced_at", "")})
        return recent[-RECENT_RESULTS:]

    async def inventory_status(self, product_code: str) -> dict[str, Any]:
        return await inventory_status(self._settings, product_code)


def group_skipped(skipped: list[dict[str, Any]], stores: dict[str, StoreRecord], sample: int = 5) -> list[SkipGroup]:
    """Skipped orders by reason (most first), each with the fix for its store (pure)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for order in skipped:
        for reason in order["reasons"]:
            groups.setdefault(reason, []).append(order)
    return sorted((SkipGroup(reason, len(orders), reason_fix(reason, orders[0]["shop_id"],
                                                             stores.get(orders[0]["shop_id"])),
                             [o["order_id"] for o in orders[:sample]])
                   for reason, orders in groups.items()), key=lambda g: (-g.count, g.reason))


@contextlib.asynccontextmanager
async def console_running(settings: Settings, table: StoreTable, results: LinkResults) -> AsyncIterator[None]:
    """What the console keeps open while it serves: the store table and the owner's link answers, followed."""
    stop = asyncio.Event()
    await table.load(settings)
    follower = asyncio.get_running_loop().create_task(results.follow(stop))
    try:
        async with table.following(settings):
            yield
    finally:
        stop.set()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
