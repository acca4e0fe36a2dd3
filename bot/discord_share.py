"""This process's share of Discord's global rate limit, when several processes run one bot.

Discord allows a bot about 50 requests a second in all, whichever process sends them. Each process
takes a fixed share of 40 of them, in proportion to the shards it runs (SHARD_IDS out of SHARD_COUNT),
and paces its own requests to it, so together they stay under the limit without talking to each
other. Near
the limit a request waits its turn here (at most about a second) instead of drawing a 429.

Answers to interactions and the personas' webhook messages go through discord.py's webhook
adapter, not its HTTP client, and are not paced: Discord does not count interaction endpoints
against the global limit, and a member's command must be answered within 3 s.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

GLOBAL_REQUESTS_PER_SECOND = 50.0
# The processes share 80% of it: requests that leave a second apart can reach Discord closer
# together (a busy host, a congested network), and a share of the whole limit then draws 429s.
HEADROOM = 0.8
# A second, and a margin for requests that take a little longer to reach Discord than others.
WINDOW_SECONDS = 1.05
EPSILON = 1e-9
T = TypeVar("T")


def share_of_global_limit(count: int | None, ids: list[int] | None) -> float | None:
    """Requests a second this process may send; None when it runs every shard (no one to share with)."""
    if ids is None or count is None:
        return None
    return GLOBAL_REQUESTS_PER_SECOND * HEADROOM * len(ids) / count


class RequestPacer:
    """At most `rate` requests in any one second, rounded down to whole requests; waiters go in turn.

    A sliding window, not a token bucket: a bucket of `rate` tokens refilled at `rate` a second lets
    twice `rate` through in the second after an idle spell, and the processes' shares would add up
    to twice Discord's limit. The window is a little over a second, so requests that reach Discord
    a few milliseconds apart from when they left still fall in separate seconds there.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.per_window = max(1, math.floor(rate + EPSILON))
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()  # when the last `per_window` requests went
        self._turn = asyncio.Lock()

    async def wait_turn(self) -> None:
        async with self._turn:  # first come, first served
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - WINDOW_SECONDS + EPSILON:
                    self._sent.popleft()
                if len(self._sent) < self.per_window:
                    self._sent.append(now)
                    return
                await self._sleep(self._sent[0] + WINDOW_SECONDS - now)


def paced(request: Callable[..., Awaitable[T]], pacer: RequestPacer) -> Callable[..., Awaitable[T]]:
    """`request`, each call waiting for its turn under the pacer first."""

    @functools.wraps(request)
    async def paced_request(*args: Any, **kwargs: Any) -> T:
        await pacer.wait_turn()
        return await request(*args, **kwargs)

    return paced_request
