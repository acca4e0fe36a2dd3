"""Replies being streamed right now, and how a Stop cuts one where it is.

Each of the model's words is awaited in a task of its own, so Stop cancels that wait (closing the
HTTP stream: no more tokens are made or paid for) without ever interrupting a call to Discord
half-way; the reply then ends as any other, with the words that had arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from storage.roleplay import Session


class StoppableStream:
    """The model's deltas, each read in a task that `stop()` cancels.

    Used as `async with StoppableStream(deltas) as stream: async for delta in stream: ...`;
    the model's errors come out where the delta is read, as from `deltas` itself.
    """

    def __init__(self, deltas: AsyncIterator[str]) -> None:
        self._deltas = deltas
        self._reading: asyncio.Task[str] | None = None
        self.stopped = False

    async def __aenter__(self) -> StoppableStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self._reading
        aclose = getattr(self._deltas, "aclose", None)
        if aclose is not None:
            await aclose()  # the HTTP stream closes with it

    def __aiter__(self) -> StoppableStream:
        return self

    async def __anext__(self) -> str:
        if self.stopped:
            raise StopAsyncIteration
        self._reading = asyncio.ensure_future(self._next_delta())
        try:
            return await self._reading
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.stopped and (current is None or not current.cancelling()):
                raise StopAsyncIteration from None  # our Stop, not our own cancellation
            raise

    async def _next_delta(self) -> str:
        return await anext(self._deltas)

    def stop(self) -> None:
        """Cut the reply here: no more words are read, and the request to the model is closed."""
        self.stopped = True
        if self._reading is not None:
            self._reading.cancel()


@dataclass
class RunningReply:
    """One reply while it streams: whose it is, the messages it is in, and the switch that stops it."""

    session: Session
    channel_id: int
    stream: StoppableStream
    message_ids: list[int] = field(default_factory=list)


class RunningReplies:
    """Every reply streaming now, found by any of its messages (a Stop button names one)."""

    def __init__(self) -> None:
        self._by_message: dict[int, RunningReply] = {}
        self._replies: list[RunningReply] = []

    def begin(self, session: Session, channel_id: int, stream: StoppableStream) -> RunningReply:
        reply = RunningReply(session, channel_id, stream)
        self._replies.append(reply)
        return reply

    def posted(self, reply: RunningReply, message_id: int) -> None:
        reply.message_ids.append(message_id)
        self._by_message[message_id] = reply

    def end(self, reply: RunningReply) -> None:
        for message_id in reply.message_ids:
            self._by_message.pop(message_id, None)
        with contextlib.suppress(ValueError):
            self._replies.remove(reply)

    def find(self, message_id: int) -> RunningReply | None:
        return self._by_message.get(message_id)

    def channels(self) -> set[int]:
        return {reply.channel_id for reply in self._replies}
