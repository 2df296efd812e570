"""Store commands: how everyone but the stores owner asks for a change to `shopsync.stores`.

The owner (`services/stores`) is the one writer of the table. A requester publishes a command on
`shopsync.store-commands`, keyed by the record it is about (the shop id, or `pending:{state}` for a pending link),
so all commands for one record are applied in order by the one owner instance assigned its partition. The owner
answers on `shopsync.store-results`, keyed by the command id; `StoreCommands.request` waits for that answer.

A command that carries `based_on` (the revision its requester read) is applied only if that is still the record's
revision; otherwise it is refused (`refused`, reason `stale_revision`, with the current revision) and nothing is
written. A command without it (`based_on=None`) applies to whatever the record is now.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Literal, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import create_consumer, create_producer, partitions_of
from shared.logging import get_logger
from shared.producer import Sender, deliver
from shared.settings import Settings
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.topics import STORE_COMMANDS, STORE_RESULTS, topic_name

log = get_logger("stores.commands")

ResultStatus = Literal["applied", "unchanged", "refused", "failed", "ignored", "choice_needed"]
APPLIED: ResultStatus = "applied"  # written: `revision` is the record's new revision
UNCHANGED: ResultStatus = "unchanged"  # nothing to write (already so)
REFUSED: ResultStatus = "refused"  # not applied: `reason` says why (stale_revision, not_linked, unknown_store, ...)
FAILED: ResultStatus = "failed"  # tried and failed: TikTok refused, tokens do not decrypt, a warehouse not found...
IGNORED: ResultStatus = "ignored"  # an authorization event older than the store's last link (stale_event)
CHOICE_NEEDED: ResultStatus = "choice_needed"  # the authorization covers several shops: the seller picks one

STALE_REVISION = "stale_revision"
READ_RETRY_S = 1.0
CE_SOURCE = "shopsync/store-commands"


class BadCommand(ValueError):
    """A record on the command topic that is not a store command (the reason names what is wrong)."""


class OwnerNotAnswering(TimeoutError):
    """The stores owner did not answer within the deadline. The command stays on the topic: it is applied when
    an owner is back (its answer then goes unread)."""

    def __init__(self, command: StoreCommand, waited_s: float) -> None:
        super().__init__(f"the stores owner did not answer {command.kind} {command.command_id} for {command.key} "
                         f"within {waited_s:g} s: is `shopsync stores-owner` running? (the command stays queued "
                         "and is applied when it is back)")
        self.command = command
        self.waited_s = waited_s


def new_command_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreCommand:
    """What every command carries; `key` is the record it is about (and the record key on the command topic)."""

    kind: ClassVar[str] = ""
    command_id: str = field(default_factory=new_command_id)
    shop_id: str = ""
    based_on: int | None = None
    requested_by: str = ""
    issued_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def key(self) -> str:
        return self.shop_id

    @property
    def reply_to(self) -> str:
        """The command id its answer is published under (the link a forwarded `attach_link` completes)."""
        return self.command_id

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            doc[f.name] = value.to_dict() if isinstance(value, StoreRecord) else value
        return orjson.dumps(doc)


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginLink(StoreCommand):
    """`stores link`: store this pending link (its state is the single-use OAuth `state`)."""

    kind: ClassVar[str] = "begin_link"
    record: StoreRecord

    @property
    def key(self) -> str:
        return self.record.key


@dataclass(frozen=True, slots=True, kw_only=True)
class Link(StoreCommand):
    """The OAuth callback: complete the pending link of `state` with TikTok's `code`, or with the shop the seller
    picked (`chosen_shop_id`, for a pending shop choice). The owner exchanges the code and resolves the warehouse."""

    kind: ClassVar[str] = "link"
    state: str
    code: str = ""
    chosen_shop_id: str = ""

    @property
    def key(self) -> str:
        return f"{PENDING_KEY_PREFIX}{self.state}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachLink(StoreCommand):
    """The owner's own follow-up of a `link`: store the linked shop, from the partition that owns its shop id."""

    kind: ClassVar[str] = "attach_link"
    record: StoreRecord
    answers: str  # the `link` command this completes: the answer goes out under its id

    @property
    def reply_to(self) -> str:
        return self.answers


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshTokens(StoreCommand):
    """Refresh the shop's tokens at TikTok, if they are still those of revision `based_on` (else a no-op)."""

    kind: ClassVar[str] = "refresh_tokens"


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkNeedsRelink(StoreCommand):
    """The requester's keys do not decrypt the shop's tokens: the owner checks with its own and marks the store."""

    kind: ClassVar[str] = "mark_needs_relink"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStore(StoreCommand):
    """A field-level patch (None = leave as is); a warehouse name is re-resolved at TikTok ('' = all)."""

    kind: ClassVar[str] = "set"
    nickname: str | None = None
    warehouse: str | None = None
    auto_sync_orders: bool | None = None
    auto_sync_shipments: bool | None = None
    auto_sync_inventory: bool | None = None
    inventory_buffer: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlink(StoreCommand):
    """Stop syncing the shop: status `deauthorized`, tokens erased."""

    kind: ClassVar[str] = "unlink"


@dataclass(frozen=True, slots=True, kw_only=True)
class RotateKey(StoreCommand):
    """Re-encrypt the record's tokens with the first key of the owner's SHOPSYNC_SECRET_KEY."""

    kind: ClassVar[str] = "rotate_key"
    record_key: str

    @property
    def key(self) -> str:
        return self.record_key


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationEvent(StoreCommand):
    """TikTok webhook 6 (deauthorization) or 7 (authorization expiring), as the owner's webhook feed read it."""

    kind: ClassVar[str] = "authorization_event"
    event_type: int
    pushed_at: int | None = None  # the webhook's `timestamp`
    notification_id: str = ""
    expiration_time: int | None = None  # type 7: `data.expiration_time`


COMMANDS: dict[str, type[StoreCommand]] = {cls.kind: cls for cls in (
    BeginLink, Link, AttachLink, RefreshTokens, MarkNeedsRelink, SetStore, Unlink, RotateKey, AuthorizationEvent)}


def parse_command(value: bytes | None) -> StoreCommand:
    """A command from its JSON; BadCommand saying what is wrong."""
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise BadCommand(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadCommand("not a JSON object")
    cls = COMMANDS.get(str(doc.get("kind")))
    if cls is None:
        raise BadCommand(f"unknown kind {doc.get('kind')!r}")
    known = {f.name: f for f in fields(cls)}
    args = {k: v for k, v in doc.items() if k in known}
    if isinstance(args.get("record"), dict):
        args["record"] = StoreRecord.from_dict(args["record"])
    try:
        command = cls(**args)
    except TypeError as exc:
        raise BadCommand(f"{cls.kind}: {exc}") from None
    if not command.command_id or not command.key:
        raise BadCommand(f"{cls.kind}: no command_id or no key")
    return command


def command_id_of(value: bytes | None) -> str | None:
    """The command id of a record that may not parse as a command (so its requester can still be answered)."""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
        found = orjson.loads(value or b"").get("command_id")
        return found if isinstance(found, str) and found else None
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """The owner's answer to one command, on `shopsync.store-results` under the command id."""

    command_id: str
    kind: str
    key: str
    status: ResultStatus
    reason: str = ""  # machine-readable: stale_revision, not_linked, unknown_store, link_expired, tiktok_error, ...
    message: str = ""  # for the seller or operator; never a token
    revision: int | None = None  # the record's revision after the command (the current one when refused)
    store: dict[str, Any] | None = None  # the record's public view after the command (no tokens, no state)
    shops: list[dict[str, str]] = field(default_factory=list)  # choice_needed: the shops to pick from
    choice_state: str = ""  # choice_needed: the state of the new pending choice
    warehouses: list[str] = field(default_factory=list)  # warehouse_not_found: the shop's sales warehouses
    tiktok_code: int | None = None
    request_id: str | None = None
    answered_at: str = field(default_factory=lambda: rfc3339(time.time()))

    @property
    def ok(self) -> bool:
        return self.status in (APPLIED, UNCHANGED, CHOICE_NEEDED)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, value: bytes | None) -> CommandResult:
        doc = orjson.loads(value or b"")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


C = TypeVar("C", bound=StoreCommand)


async def publish_command(producer: Sender, settings: Settings, command: StoreCommand) -> None:
    """Put `command` on `shopsync.store-commands` under its key, resent until acknowledged (a managed producer)."""
    event = CloudEvent(id=command.command_id, source=CE_SOURCE, type=f"shopsync.store.command.{command.kind}",
                       data=b"", time=rfc3339(time.time()), subject=command.key)
    await deliver(producer, topic_name(STORE_COMMANDS, settings.shopsync_topic_prefix), command.to_json(),
                  command.key.encode(), to_headers(event))


def stamped(command: C, requested_by: str) -> C:
    """`command` naming its requester (unless it already does)."""
    return command if command.requested_by else replace(command, requested_by=requested_by)


class StoreCommands:
    """A requester's side: send commands to the stores owner and wait for its answers.

    Use it as `async with StoreCommands(settings, producer, requested_by="cli") as commands:`; the block follows
    `shopsync.store-results` from its end, so every answer to a command sent inside it is seen. The producer is the
    caller's (started and stopped by it).
    """

    def __init__(self, settings: Settings, producer: Sender, *, requested_by: str,
                 results: AIOKafkaConsumer | None = None) -> None:
        self._settings = settings
        self._producer = producer
        self._requested_by = requested_by
        self._results = results if results is not None else create_consumer(settings, None)
        self._results_topic = topic_name(STORE_RESULTS, settings.shopsync_topic_prefix)
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.default_wait_s = settings.shopsync_store_command_timeout_s

    async def __aenter__(self) -> StoreCommands:
        await self._results.start()
        try:
            partitions = [TopicPartition(self._results_topic, p)
                          for p in sorted(await partitions_of(self._results, self._results_topic))]
            if not partitions:
                raise RuntimeError(f"topic {self._results_topic} does not exist: run `shopsync topics ensure`")
            self._results.assign(partitions)
            for tp, end in (await self._results.end_offsets(partitions)).items():
                self._results.seek(tp, end)  # explicit: answers to commands sent from now on are all after it
        except BaseException:
            await self._results.stop()
            raise
        self._reader = asyncio.get_running_loop().create_task(self._read_answers())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._results.stop()
        for waiting in self._waiting.values():
            waiting.cancel()

    async def send(self, command: StoreCommand) -> StoreCommand:
        """Publish `command` (acknowledged by the broker) without waiting for the answer; the command sent."""
        command = stamped(command, self._requested_by)
        await publish_command(self._producer, self._settings, command)
        return command

    async def request(self, command: StoreCommand, wait: float | None = None) -> CommandResult:
        """Send `command` and return the owner's answer; OwnerNotAnswering after `wait` seconds (default
        SHOPSYNC_STORE_COMMAND_TIMEOUT_S)."""
        if self._reader is None:
            raise RuntimeError("StoreCommands.request outside `async with`")
        waited = self.default_wait_s if wait is None else wait
        answer: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[command.reply_to] = answer
        try:
            command = await self.send(command)
            try:
                async with asyncio.timeout(waited):
                    return await answer
            except TimeoutError:
                raise OwnerNotAnswering(command, waited) from None
        finally:
            self._waiting.pop(command.reply_to, None)

    async def _read_answers(self) -> None:
        while True:
            try:
                batches = await self._results.getmany(timeout_ms=500)
            except KafkaError as exc:  # the requests waiting meanwhile time out with OwnerNotAnswering
                log.warning("store_results_read_failed", error=exc.__class__.__name__, retry_in_s=READ_RETRY_S)
                await asyncio.sleep(READ_RETRY_S)
                continue
            for records in batches.values():
                for record in records:
                    waiting = self._waiting.get(record.key.decode("utf-8", "replace") if record.key else "")
                    if waiting is None or waiting.done():
                        continue
                    try:
                        waiting.set_result(CommandResult.from_json(record.value))
                    except (ValueError, TypeError) as exc:
                        log.error("store_result_unreadable", key=record.key, error=str(exc))


@contextlib.asynccontextmanager
async def open_store_commands(settings: Settings, requested_by: str) -> AsyncIterator[StoreCommands]:
    """StoreCommands with a producer of its own, for one-shot requesters (CLI commands)."""
    producer = create_producer(settings)
    await producer.start()
    try:
        async with StoreCommands(settings, producer, requested_by=requested_by) as commands:
            yield commands
    finally:
        await producer.stop()
