"""What every command handler works with: the view, the writer, TikTok, the token cipher, the clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.stores.metrics import StoresMetrics
from services.stores.view import OwnerView
from services.stores.writer import RecordWriter
from shared.stores.commands import StoreCommand
from shared.stores.crypto import TokenCipher
from shared.tiktok.client import TikTokClient


@dataclass(slots=True)
class OwnerContext:
    view: OwnerView
    writer: RecordWriter
    tiktok: TikTokClient
    cipher: TokenCipher
    forward: Callable[[StoreCommand], Awaitable[None]]  # put a follow-up command on the command topic
    metrics: StoresMetrics
    clock: Callable[[], float]
