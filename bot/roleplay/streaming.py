"""Showing a streamed reply in Discord as it arrives, independent of Discord itself.

The first message is posted as soon as there is text to show, then edited at
most once per `min_edit_interval` (Discord's rate limits allow about one edit a
second per message). Text past `limit` continues in a new message, cut where
`cut_point` says; the cut-off message gets its final text at its next allowed
edit, or at `finish()`. Parts already cut never change, so the final parts are
exactly what the messages show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot import discord_limits
from bot.roleplay.splitting import cut_point

T = TypeVar("T")


@dataclass
class _PostedMessage(Generic[T]):
    handle: T
    shown: str  # what Discord shows now
    wanted: str  # what it should show (final once the message is cut off)
    touched_at: float  # when it was last sent or edited


class StreamPublisher(Generic[T]):
    """Posts and edits messages as text is fed in; not safe to `feed` from two tasks at once."""

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[T]],
        edit: Callable[[T, str], Awaitable[None]],
        clock: Callable[[], float],
        min_edit_interval: float = 1.0,
        limit: int = discord_limits.MESSAGE_CONTENT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._send = send
        self._edit = edit
        self._clock = clock
        self._sleep = sleep
        self._min_edit_interval = min_edit_interval
        self._limit = limit
        self._text = ""
        # Text after the last cut, without leading whitespace: the current (or next) message.
        self._tail = ""
        self._posted: list[_PostedMessage[T]] = []
        # Whether the last posted message is still growing (not cut off yet).
        self._current_open = False
        self._finished = False

    @property
    def messages(self) -> list[T]:
        return [message.handle for message in self._posted]

    @property
    def text(self) -> str:
        """Everything fed so far, as it came."""
        return self._text

    @property
    def started(self) -> bool:
        """Whether a message has been posted."""
        return bool(self._posted)

    async def feed(self, delta: str) -> None:
        """Add the next piece of the reply, posting and editing as the limits allow."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._text += delta
        self._tail = (self._tail + delta).lstrip()
        while len(self._tail.rstrip()) > self._limit:
            cut = cut_point(self._tail, self._limit)
            await self._show_in_current(self._tail[:cut].rstrip(), final=True)
            self._tail = self._tail[cut:].lstrip()
        if self._tail:
            await self._show_in_current(self._tail.rstrip(), final=False)
        await self._edit_due()

    async def finish(self, *, edit_every_message: bool = False) -> list[str]:
        """Bring every message to its final text, waiting out the interval if need be; return the parts.

        With `edit_every_message`, a message already showing its final text is edited once more too
        (the edit callback then takes away what only a streaming message carries, its Stop button).
        """
        if not self._finished:
            self._finished = True
            self._current_open = False
            for message in self._posted:
                if message.wanted == message.shown and not edit_every_message:
                    continue
                # Even the last edit keeps its distance: at most one edit a second, without exception.
                wait = message.touched_at + self._min_edit_interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                await self._edit_to_wanted(message, even_unchanged=edit_every_message)
        return [message.wanted for message in self._posted]

    async def _show_in_current(self, text: str, *, final: bool) -> None:
        """Make `text` what the current message should show, posting a new message if there is none open."""
        if self._current_open:
            self._posted[-1].wanted = text
        else:
            handle = await self._send(text)
            self._posted.append(_PostedMessage(handle=handle, shown=text, wanted=text, touched_at=self._clock()))
            self._current_open = True
        if final:
            self._current_open = False

    async def _edit_due(self) -> None:
        """Edit every message whose text is behind and whose interval has passed."""
        now = self._clock()
        for message in self._posted:
            if now - message.touched_at >= self._min_edit_interval:
                await self._edit_to_wanted(message)

    async def _edit_to_wanted(self, message: _PostedMessage[T], *, even_unchanged: bool = False) -> None:
        # Never the same text twice (unless asked, for the last edit), never empty text.
        if (message.wanted == message.shown and not even_unchanged) or not message.wanted:
            return
        await self._edit(message.handle, message.wanted)
        message.shown = message.wanted
        message.touched_at = self._clock()
