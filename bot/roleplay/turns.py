"""One reply at a time per persona per channel; what arrives meanwhile is answered together next.

A request while a turn runs only marks the persona as wanted again. When the
turn ends, one more turn runs, and it reads the transcript afresh, so every
message that arrived in the meantime is in it: answered together, not one
by one. Replies in a channel also keep the channel's cooldown apart.

The next turn runs the latest request's function, unless the one still waiting is `special` (a
greeting, or a turn with a cue from /roleplay next or a narrator's call) and the latest is not: a
plain request never drops a cue, and the special turn answers the new messages too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Turn = Callable[[], Awaitable[None]]


class TurnQueue:
    def __init__(self, cooldown_seconds: float) -> None:
        self._cooldown = cooldown_seconds
        self._running: dict[tuple[int, int], asyncio.Task[None]] = {}
        # The turn each persona waits for next, and whether it is special.
        self._wanted: dict[tuple[int, int], tuple[Turn, bool]] = {}
        self._channel_free_at: dict[int, float] = {}

    def request(self, channel_id: int, persona_id: int, turn: Turn, *, special: bool = False) -> None:
        key = (channel_id, persona_id)
        waiting = self._wanted.get(key)
        if special or waiting is None or not waiting[1]:
            self._wanted[key] = (turn, special)
        if key not in self._running:
            task = asyncio.create_task(self._drain(key), name=f"persona-{persona_id}-in-{channel_id}")
            self._running[key] = task

    def busy(self, channel_id: int, persona_id: int) -> bool:
        return (channel_id, persona_id) in self._running

    def forget(self, channel_id: int) -> None:
        """Drop a channel no persona speaks in any more: its cooldown and the turns it still wanted."""
        self._channel_free_at.pop(channel_id, None)
        self._wanted = {key: wanted for key, wanted in self._wanted.items() if key[0] != channel_id}

    def channels(self) -> set[int]:
        """Every channel something is kept for: a cooldown, a wanted turn or a turn running."""
        return set(self._channel_free_at) | {key[0] for key in self._wanted} | {key[0] for key in self._running}

    async def _drain(self, key: tuple[int, int]) -> None:
        channel_id = key[0]
        try:
            while key in self._wanted:
                turn, _ = self._wanted.pop(key)
                wait = self._channel_free_at.get(channel_id, 0.0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._channel_free_at[channel_id] = time.monotonic() + self._cooldown
                try:
                    await turn()
                except Exception:
                    log.exception("A persona's turn in channel %s failed", channel_id)
        finally:
            self._running.pop(key, None)

    async def stop(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        self._wanted.clear()
