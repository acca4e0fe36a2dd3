"""A sleep that news cuts short: how the follower waits for its next poll or a new job.

The core's own wake-up (an `asyncio.Event`), so it does not lean on the Discord
client's events for it.
"""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    """`sleep(seconds)` returns after `seconds`, or as soon as `wake()` is called, whichever is first.

    A wake while nobody sleeps is kept, so the next sleep returns at once: nothing that happens
    between deciding how long to sleep and sleeping is missed.
    """

    def __init__(self) -> None:
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def sleep(self, seconds: float | None) -> None:
        """Sleep for `seconds` (None: until woken), unless woken first or already."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        self._woken.clear()
