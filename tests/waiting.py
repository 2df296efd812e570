"""Waiting in tests: poll a condition until it holds or a deadline passes; never sleep a fixed time and hope."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], *, within: float = 30.0, every: float = 0.05,
                     what: str | Callable[[], str] = "the condition") -> T:
    """Call `check()` (plain or async) every `every` s until it returns something truthy, and return that.

    Fails with an AssertionError naming `what` (a text, or a function that describes the state at the deadline)
    if it has not held within `within` s. An exception raised by `check` ends the wait at once.
    """

    async def value() -> T:
        result = check()
        return await result if inspect.isawaitable(result) else result

    try:
        async with asyncio.timeout(within) as deadline:
            while not (result := await value()):  # noqa: ASYNC110  polling is the point: what we wait on has no event
                await asyncio.sleep(every)
    except TimeoutError:
        if not deadline.expired():
            raise  # `check` itself timed out: not our deadline
        raise AssertionError(f"not within {within}s: {what() if callable(what) else what}") from None
    return result
