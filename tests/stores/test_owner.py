"""The stores owner against the real broker: one writer of `shopsync.stores`, commands in order, revisions checked,
authorization webhooks applied once and never over a newer link, any number of instances."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from click.testing import CliRunner, Result

from services.stores.wiring import build_service
from shared.kafka import read_to_end
from shared.settings import Settings
from shared.stores.commands import (
    BeginLink,
    Link,
    SetStore,
    StoreCommand,
    open_store_commands,
)
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.linking import new_pending_link
from shared.stores.model import DEAUTHORIZED, LINKED, StoreRecord
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreUnavailable, TokenKeeper
from shared.topics import STORE_COMMANDS, TIKTOK_WEBHOOKS
from shopsync.cli import cli
from shopsync.commands.stores import change_store
from tests.fakes import NOW, linked_store
from tests.stores.owner import (
    ScriptedTikTok,
    answer_to,
    answers,
    history,
    owner,
    publish,
    running,
    running_owner,
    seed,
    with_key,
)
from tests.waiting import eventually

KEY = generate_key()
CIPHER = TokenCipher(KEY)
SHOP = "7001"


@pytest.fixture
def owned(settings: Settings) -> Settings:
    """The test's settings with the token key the owner (and the CLI) use."""
    return with_key(settings, KEY)


async def shopsync(settings: Settings, *args: str) -> Result:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "SHOPSYNC_TOPIC_PREFIX": settings.shopsync_topic_prefix, "SHOPSYNC_SECRET_KEY": KEY}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def current(settings: Settings, shop_id: str = SHOP) -> StoreRecord:
    return (await StoreTable().load(settings)).stores[shop_id]


async def commands_on_topic(settings: Settings) -> int:
    return len([r async for r in read_to_end(settings, STORE_COMMANDS)])


# ---- revisions ---------------------------------------------------------------------------------------------------
async def test_a_command_based_on_a_stale_revision_is_refused_and_not_applied(owned: Settings) -> None:
    await seed(owned, linked_store(SHOP, CIPHER))
    async with running_owner(owned), open_store_commands(owned, "test") as commands:
        stale = await commands.request(SetStore(shop_id=SHOP, based_on=3, nickname="Renamed"))
        assert (stale.status, stale.reason, stale.revision) == ("refused", "stale_revision", 0)
        assert (await current(owned)).nickname == f"Store {SHOP}" and len(await history(owned, SHOP)) == 1
        fresh = await commands.request(SetStore(shop_id=SHOP, based_on=0, nickname="Renamed"))
        assert (fresh.status, fresh.revision) == ("applied", 1) and fresh.store is not None
        assert fresh.store["nickname"] == "Renamed" and "access_token_enc" not in fresh.store
    assert [(r["revision"], r["nickname"]) for r in await history(owned, SHOP)] == [(0, "Store 7001"), (1, "Renamed")]


async def test_two_stores_set_calls_based_on_the_same_revision_both_land(owned: Settings) -> None:
    await seed(owned, linked_store(SHOP, CIPHER))
    async with running_owner(owned):
        before = await current(owned)
        reads: dict[str, int] = {"orders": 0, "buffer": 0}

        def reader(name: str):  # type: ignore[no-untyped-def]  # the first read of each call is the shared, old one
            async def read(settings: Settings, shop: str) -> StoreRecord:
                reads[name] += 1
                return before if reads[name] == 1 else await current(settings, shop)
            return read

        def orders_off(store: StoreRecord) -> StoreCommand:
            return SetStore(shop_id=store.shop_id, based_on=store.revision, auto_sync_orders=False)

        def buffer_7(store: StoreRecord) -> StoreCommand:
            return SetStore(shop_id=store.shop_id, based_on=store.revision, inventory_buffer=7)

        (_, a), (_, b) = await asyncio.gather(change_store(owned, SHOP, orders_off, read=reader("orders")),
                                              change_store(owned, SHOP, buffer_7, read=reader("buffer")))
    assert (a.status, b.status) == ("applied", "applied")
    assert sorted(reads.values()) == [1, 2]  # one was refused as stale, read the store again and was sent again
    store = await current(owned)
    assert (store.auto_sync_orders, store.inventory_buffer, store.revision) == (False, 7, 2)


@pytest.mark.integration
async def test_two_concurrent_stores_set_processes_both_land(owned: Settings) -> None:
    await seed(owned, linked_store(SHOP, CIPHER))
    env = {"KAFKA_BOOTSTRAP_SERVERS": owned.bootstrap_servers, "SHOPSYNC_TOPIC_PREFIX": owned.shopsync_topic_prefix,
           "SHOPSYNC_SECRET_KEY": KEY, "PATH": ""}
    async with running_owner(owned):
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "shopsync", "stores", "set", SHOP, *args,
                                                      env=env, stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.STDOUT)
                 for args in (("--auto-sync-shipments", "off"), ("--inventory-buffer", "3"))]
        outputs = [(await p.communicate())[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    store = await current(owned)
    assert (store.auto_sync_shipments, store.inventory_buffer, store.revision) == (False, 3, 2)


# ---- an unlink during a token refresh ----------------------------------------------------------------------------
async def test_an_unlink_during_a_token_refresh_stays_unlinked(owned: Settings) -> None:
    await seed(owned, linked_store(SHOP, CIPHER, expires_at=NOW + 60))
    tiktok = ScriptedTikTok()
    tiktok.hold_refreshes()
    async with running_owner(owned, tiktok), open_store_commands(owned, "ingest") as commands:
        table = await StoreTable().load(owned)
        async with table.following(owned):
            keeper = TokenKeeper(table, commands, tiktok, CIPHER)  # type: ignore[arg-type]  # never calls TikTok here
            refreshing = asyncio.get_running_loop().create_task(keeper.on_token_expired(SHOP))
            await asyncio.wait_for(tiktok.refresh_started.wait(), 30)  # the owner is at TikTok with the old tokens
            unlinking = asyncio.get_running_loop().create_task(shopsync(owned, "stores", "unlink", SHOP))
            await _until_commands(owned, 2)  # the unlink is queued behind the refresh, based on revision 0
            tiktok.release_refresh.set()
            unlinked = await unlinking
            assert unlinked.exit_code == 0, unlinked.output
            await asyncio.gather(refreshing, return_exceptions=True)  # its token, or "not linked": either is fine
            with pytest.raises(StoreUnavailable):
                await keeper.refresh(SHOP)
    store = await current(owned)
    assert (store.status, store.access_token_enc, store.refresh_token_enc) == (DEAUTHORIZED, "", "")
    written = [(r["revision"], r["status"], bool(r["access_token_enc"])) for r in await history(owned, SHOP)]
    assert written == [(0, LINKED, True), (1, LINKED, True), (2, DEAUTHORIZED, False)]  # refreshed, then unlinked
    assert tiktok.refreshes == [f"TTP_refresh_{SHOP}"]


async def _until_commands(settings: Settings, count: int) -> None:
    async def enough() -> bool:
        return await commands_on_topic(settings) >= count
    await eventually(enough, within=30, what=f"{count} commands on the command topic")


# ---- authorization webhooks --------------------------------------------------------------------------------------
async def link_store(settings: Settings) -> StoreRecord:
    """Link the scripted TikTok's shop (s1) through the owner: `stores link`, then the callback's `link`."""
    record, _ = new_pending_link(settings, "Main store", "LA Warehouse")
    async with open_store_commands(settings, "test") as commands:
        assert (await commands.request(BeginLink(record=record))).status == "applied"
        linked = await commands.request(Link(state=record.state, code="c1"))
    assert linked.status == "applied", linked
    return await current(settings, "s1")


def webhook(event_type: int, notification_id: str, pushed_at: int, **data: object) -> dict[str, object]:
    return {"type": event_type, "tts_notification_id": notification_id, "shop_id": "s1", "timestamp": pushed_at,
            "data": data}


async def deliver_webhook(settings: Settings, body: dict[str, object]) -> None:
    """As the gateway publishes it: key = shop id, ce_id = the notification id."""
    await publish(settings, TIKTOK_WEBHOOKS, "s1", body, [("ce_id", str(body["tts_notification_id"]).encode())])


async def test_the_owner_as_wired_reads_webhooks_in_batches_not_every_few_records(settings: Settings) -> None:
    """The feed reads every webhook for rare types 6 and 7: its fetches wait for 64 KiB or half a second (answered
    every few records, it cost an eighth of a core at 500 webhooks/s)."""
    service = build_service(with_key(settings))
    try:
        feed = service._webhooks
        assert (feed._fetch_min_bytes, feed._fetch_max_wait_ms) == (64 * 1024, 500)
    finally:
        await service._tiktok.aclose()


async def test_a_deauthorization_pushed_before_the_last_link_is_ignored(owned: Settings) -> None:
    async with running_owner(owned) as service:
        linked = await link_store(owned)
        assert linked.status == LINKED and linked.authorized_at > 0
        await deliver_webhook(owned, webhook(6, "n-old", linked.authorized_at - 600))
        stale = await answer_to(owned, "webhook:n-old")
        assert (stale["status"], stale["reason"]) == ("ignored", "stale_event")
        assert service.metrics.stale.labels(type="6")._value.get() == 1
        assert (await current(owned, "s1")).status == LINKED
        await deliver_webhook(owned, webhook(6, "n-new", linked.authorized_at + 1))
        assert (await answer_to(owned, "webhook:n-new"))["status"] == "applied"
    assert (await current(owned, "s1")).status == DEAUTHORIZED


async def test_the_same_deauthorization_delivered_three_times_is_acted_on_once(owned: Settings) -> None:
    async with running_owner(owned) as service:
        linked = await link_store(owned)
        body = webhook(6, "n-1", int(time.time()) + 5)
        for _ in range(3):
            await deliver_webhook(owned, body)
        assert (await answer_to(owned, "webhook:n-1"))["status"] == "applied"
        await eventually(lambda: service.metrics.duplicates.labels(type="6")._value.get() == 2, within=30,
                         what="two duplicates counted")
    async with running_owner(owned) as restarted:  # the window of notifications survives a restart
        await deliver_webhook(owned, body)
        await eventually(lambda: restarted.metrics.duplicates.labels(type="6")._value.get() == 1, within=30,
                         what="the fourth delivery counted as a duplicate after the restart")
    written = [(r["revision"], r["status"]) for r in await history(owned, "s1")]
    assert written == [(linked.revision, LINKED), (linked.revision + 1, DEAUTHORIZED)]
    assert [a["command_id"] for a in await answers(owned)].count("webhook:n-1") == 1


# ---- two instances -----------------------------------------------------------------------------------------------
SHOPS = [f"70{n:02d}" for n in range(6)]
ROUNDS = 12


async def test_two_owner_instances_apply_each_shops_commands_once_in_order_and_a_killed_one_loses_none(
        owned: Settings) -> None:
    await seed(owned, *(linked_store(shop, CIPHER) for shop in SHOPS))
    first, second = owner(owned, ScriptedTikTok()), owner(owned, ScriptedTikTok())
    sent: list[str] = []
    async with running(first) as first_task, running(second), open_store_commands(owned, "test") as commands:
        await eventually(lambda: first.partitions and second.partitions and not first.partitions & second.partitions,
                         within=30, what="the command topic's partitions shared by the two instances")
        for n in range(1, ROUNDS + 1):
            if n == ROUNDS // 2:
                first_task.cancel()  # killed with commands in flight: the other instance takes its partitions
            for shop in SHOPS:
                sent.append((await commands.send(SetStore(shop_id=shop, inventory_buffer=n))).command_id)

        async def all_answered() -> bool:
            return {a["command_id"] for a in await answers(owned)} >= set(sent)
        await eventually(all_answered, within=90, what="an answer to every command")
    answered = [a["command_id"] for a in await answers(owned)]
    assert sorted(answered) == sorted(sent)  # each command answered once
    for shop in SHOPS:
        written = [(r["revision"], r["inventory_buffer"]) for r in await history(owned, shop)][1:]
        assert written == [(n, n) for n in range(1, ROUNDS + 1)], shop  # each applied once, in order
