"""This process's share of Discord's global rate limit, when several processes run one bot.

Discord allows a bot about 50 requests a second in all, whichever process sends them. Each process
takes a fixed share, in proportion to the shards it runs (SHARD_IDS out of SHARD_COUNT), and paces
its own requests to it, so together they stay under the limit without talking to each other. Near
the limit a request waits its turn here (a few tens of milliseconds) instead of drawing a 429.

Answers to interactions and the personas' webhook messages go through discord.py's webhook
adapter, not its HTTP client, and are not paced: Discord does not count interaction endpoints
against the global limit, and a member's command must be answered within 3 s.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

GLOBAL_REQUESTS_PER_SECOND = 50.0
EPSILON = 1e-9
T = TypeVar("T")


def share_of_global_limit(count: int | None, ids: list[int] | None) -> float | None:
    """Requests a second this process may send; None when it runs every shard (no one to share with)."""
    if ids is None or count is None:
        return None
    return GLOBAL_REQUESTS_PER_SECOND * len(ids) / count


class RequestPacer:
    """At most `rate` requests a second on average, in bursts of at most `rate`; waiters go in turn."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = rate
        self._refilled_at = clock()
        self._turn = asyncio.Lock()

    async def wait_turn(self) -> None:
        async with self._turn:  # first come, first served
            while True:
                now = self._clock()
                self._tokens = min(self.rate, self._tokens + (now - self._refilled_at) * self.rate)
                self._refilled_at = now
                if self._tokens >= 1 - EPSILON:  # a refill computed to 0.9999999... is a whole token
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1 - self._tokens) / self.rate)


def paced(request: Callable[..., Awaitable[T]], pacer: RequestPacer) -> Callable[..., Awaitable[T]]:
    """`request`, each call waiting for its turn under the pacer first."""

    @functools.wraps(request)
    async def paced_request(*args: Any, **kwargs: Any) -> T:
        await pacer.wait_turn()
        return await request(*args, **kwargs)

    return paced_request
