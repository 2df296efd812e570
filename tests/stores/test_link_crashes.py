"""A `link` stopped at any point: redelivered, its requester gets exactly one answer, and the right one (the real
owner over in-memory topics, `memory_service`; one kill against the broker)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from services.stores.linking import COMPLETED, COMPLETING
from shared.settings import Settings, load_settings
from shared.stores.commands import BeginLink, Link, open_store_commands
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.linking import new_pending_link
from shared.stores.model import LINKED, StoreRecord
from shared.stores.table import StoreTable
from shared.tiktok.models import AuthorizedShop
from tests.fakes import NOW, FakeTikTok
from tests.stores.memory_owner import MemoryOwner
from tests.stores.memory_service import Crash, MemoryService
from tests.stores.owner import ScriptedTikTok, answer_to, answers, owner, running, running_owner, with_key

KEY = generate_key()
CIPHER = TokenCipher(KEY)
SETTINGS = load_settings(tiktok_service_id="svc-1")
GB = AuthorizedShop("s2", "EU Store GB", "GB", "CROSS_BORDER", "cipher-2", "C2")
DE = AuthorizedShop("s3", "EU Store DE", "DE", "CROSS_BORDER", "cipher-3", "C3")


@dataclass
class ExchangingTikTok(FakeTikTok):
    """FakeTikTok recording the codes exchanged; `crash_in_exchange`: the owner dies while TikTok answers."""

    codes: list[str] = field(default_factory=list)
    crash_in_exchange: bool = False

    async def get_token(self, code: str) -> Any:
        self.codes.append(code)
        if self.crash_in_exchange:
            self.crash_in_exchange = False
            raise Crash("stopped during the code exchange")
        return await super().get_token(code)


async def begun(service: MemoryService, warehouse: str = "LA Warehouse") -> StoreRecord:
    """A pending link, stored by the owner (`stores link`)."""
    record, _ = new_pending_link(SETTINGS, "Main store", warehouse, now=NOW)
    service.send(BeginLink(record=record))
    await service.drain()
    return record


def described(step: tuple[str, str, bytes | None]) -> str:
    topic, key, value = step
    if topic == "commit":
        return "commit"
    doc = orjson.loads(value) if value is not None else {"status": "tombstone"}
    what = doc.get("status_reason") or doc.get("kind") or doc["status"]  # a record, a command or an answer
    return f"{topic.rsplit('.', 1)[-1]} {key.split(':')[0]} {what}"


async def test_a_link_takes_these_steps_each_a_point_to_stop_at() -> None:
    tiktok = ExchangingTikTok()
    service = MemoryService.new(tiktok, CIPHER, clock=lambda: NOW + 60)
    record = await begun(service)
    first = service.topics.steps
    link = service.send(Link(state=record.state, code="c1"))
    await service.drain()
    assert [described(s) for s in service.topics.trail[first:]] == [
        f"stores pending {COMPLETING}", f"stores pending {COMPLETED}", "store-commands s1 attach_link",
        "stores pending tombstone", "commit", "stores s1 linked", f"store-results {link.command_id} attach_link",
        "commit"]


@pytest.mark.parametrize("shops_first", [False, True], ids=["in-order", "attach-first"])
@pytest.mark.parametrize(("step", "outcome"), [
    pytest.param(0, "applied", id="before-the-first-write"),
    pytest.param(1, "link_interrupted", id="after-the-first-write"),  # the code was exchanged, its result lost
    pytest.param(2, "applied", id="after-the-exchange-result-is-stored"),
    pytest.param(3, "applied", id="after-the-forward"),
    pytest.param(4, "applied", id="after-the-tombstone"),
    pytest.param(5, "applied", id="attach-before-its-write"),
    pytest.param(6, "applied", id="attach-after-its-write"),
    pytest.param(7, "applied", id="attach-after-its-answer"),
])
async def test_a_link_stopped_at_any_step_gets_one_right_answer_once_redelivered(step: int, outcome: str,
                                                                                 shops_first: bool) -> None:
    tiktok = ExchangingTikTok()
    service = MemoryService.new(tiktok, CIPHER, clock=lambda: NOW + 60)
    record = await begun(service)
    link = service.send(Link(state=record.state, code="c1"))
    service.crash_at(step)
    with pytest.raises(Crash):
        await service.drain()
    service = service.restart()
    await service.drain(shops_first=shops_first)
    [answer] = service.answers_to(link.command_id)
    table = service.table()
    assert table.pending == {} and tiktok.codes == ["c1"]  # used up; the code exchanged once
    if outcome == "applied":
        assert (answer.kind, answer.status, answer.revision) == ("attach_link", "applied", 1), answer
        assert "is linked" in answer.message
        store = table.stores["s1"]
        assert (store.status, store.warehouse_names, store.state) == (LINKED, ["LA Warehouse"], "")
        assert CIPHER.decrypt(store.refresh_token_enc) == "TTP_refresh_c1"  # the exchange's tokens, kept
        assert len(service.history("s1")) == 1  # stored once, whatever was forwarded twice
    else:
        assert (answer.kind, answer.status, answer.reason) == ("link", "failed", outcome)
        assert "interrupted" in answer.message and "shopsync stores link" in answer.message
        assert table.stores == {}


async def test_a_link_stopped_during_the_code_exchange_fails_as_interrupted() -> None:
    tiktok = ExchangingTikTok(crash_in_exchange=True)
    service = MemoryService.new(tiktok, CIPHER, clock=lambda: NOW + 60)
    record = await begun(service)
    link = service.send(Link(state=record.state, code="c1"))
    with pytest.raises(Crash):
        await service.drain()
    service = service.restart()
    await service.drain()
    [answer] = service.answers_to(link.command_id)
    assert (answer.status, answer.reason) == ("failed", "link_interrupted")
    assert tiktok.codes == ["c1"] and service.table().pending == {} and service.table().stores == {}


@pytest.mark.parametrize("step", [None, 1, 3], ids=["no-stop", "after-the-first-write", "after-the-forward"])
async def test_a_second_link_of_the_same_state_is_refused_as_used(step: int | None) -> None:
    tiktok = ExchangingTikTok()
    service = MemoryService.new(tiktok, CIPHER, clock=lambda: NOW + 60)
    record = await begun(service)
    first = service.send(Link(state=record.state, code="c1"))
    second = service.send(Link(state=record.state, code="c2"))
    if step is not None:
        service.crash_at(step)
        with pytest.raises(Crash):
            await service.drain()
        service = service.restart()
    await service.drain()
    [answered] = service.answers_to(first.command_id)
    assert answered.status == ("failed" if step == 1 else "applied")
    [refused] = service.answers_to(second.command_id)
    assert (refused.status, refused.reason) == ("failed", "unknown_link") and "already used" in refused.message
    assert tiktok.codes == ["c1"] and service.table().pending == {}


async def test_the_same_link_delivered_twice_is_answered_once() -> None:
    service = MemoryService.new(ExchangingTikTok(), CIPHER, clock=lambda: NOW + 60)
    record = await begun(service)
    link = Link(state=record.state, code="c1")
    service.send(link)
    service.send(link)  # a producer's resend after a lost acknowledgement
    await service.drain()
    assert [a.status for a in service.answers_to(link.command_id)] == ["applied"]
    assert len(service.commands("attach_link")) == 1


async def test_a_link_is_refused_while_the_pending_link_was_taken_by_another_one() -> None:
    tiktok = ExchangingTikTok()
    memory = MemoryOwner(tiktok, CIPHER, clock=lambda: NOW + 60)
    pending, _ = new_pending_link(SETTINGS, "Main store", now=NOW)
    for status_reason in (COMPLETING, COMPLETED):
        taken = StoreRecord.from_dict({**pending.to_dict(), "status_reason": status_reason})
        memory.table.apply_own(taken.key, orjson.dumps(taken.to_dict()), 0, "another-link")
        result = await memory.request(Link(state=pending.state, code="c2"))
        assert (result.status, result.reason) == ("failed", "unknown_link") and "already used" in result.message
    assert tiktok.codes == [] and memory.writer.written == []


async def test_a_shop_choice_stopped_after_its_first_write_is_completed_when_redelivered() -> None:
    tiktok = ExchangingTikTok(shops=[GB, DE])
    service = MemoryService.new(tiktok, CIPHER, clock=lambda: NOW + 60)
    record = await begun(service, warehouse="")
    asked = service.send(Link(state=record.state, code="c1"))
    await service.drain()
    [choice] = service.answers_to(asked.command_id)
    assert choice.status == "choice_needed" and list(service.table().pending) == [choice.choice_state]
    picked = service.send(Link(state=choice.choice_state, chosen_shop_id="s3"))
    service.crash_at(1)  # its pending choice marked as being completed, nothing more
    with pytest.raises(Crash):
        await service.drain()
    service = service.restart()
    await service.drain()
    [linked] = service.answers_to(picked.command_id)
    assert (linked.status, linked.store and linked.store["shop_id"]) == ("applied", "s3")
    assert service.table().pending == {} and tiktok.codes == ["c1"]  # the tokens the choice kept were used


@pytest.mark.parametrize("step", [1, 2, 3], ids=["before-the-answer", "after-the-answer", "after-the-tombstone"])
async def test_a_failed_link_stopped_around_its_answer_is_answered_once_and_used_up(step: int) -> None:
    service = MemoryService.new(ExchangingTikTok(), CIPHER, clock=lambda: NOW + 60)
    record = await begun(service, warehouse="Dallas")
    link = service.send(Link(state=record.state, code="c1"))
    service.crash_at(step)
    with pytest.raises(Crash):
        await service.drain()
    service = service.restart()
    await service.drain()
    [answer] = service.answers_to(link.command_id)
    # stopped before the answer, the exchange is not redone (the code is single use): interrupted
    assert (answer.status, answer.reason) == ("failed", "link_interrupted" if step == 1 else "warehouse_not_found")
    assert service.table().pending == {} and service.table().stores == {}


# ---- against the broker --------------------------------------------------------------------------------------
class HeldExchange(ScriptedTikTok):
    """A TikTok whose code exchange never answers: the owner is killed while it waits."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanging = asyncio.Event()

    async def get_token(self, code: str) -> Any:
        self.exchanging.set()
        await asyncio.Event().wait()


@pytest.fixture
def owned(settings: Settings) -> Settings:
    return with_key(settings, KEY)


async def test_an_owner_killed_during_the_code_exchange_answers_the_link_once_when_back(owned: Settings) -> None:
    tiktok = HeldExchange()
    record, _ = new_pending_link(owned, "Main store", "LA Warehouse")
    first = owner(owned, tiktok)
    async with running(first) as killed, open_store_commands(owned, "test") as commands:
        assert (await commands.request(BeginLink(record=record))).status == "applied"
        link = await commands.send(Link(state=record.state, code="c1"))
        await asyncio.wait_for(tiktok.exchanging.wait(), 30)
        killed.cancel()  # its first write on the table, its offset not committed
        with contextlib.suppress(asyncio.CancelledError):
            await killed
    async with running_owner(owned):
        answer = await answer_to(owned, link.command_id)
    assert (answer["status"], answer["reason"]) == ("failed", "link_interrupted")
    assert [a["command_id"] for a in await answers(owned)].count(link.command_id) == 1
    table = await StoreTable().load(owned)
    assert table.pending == {} and table.stores == {}
