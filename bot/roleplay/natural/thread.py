"""One natural persona's turn-taking thread in one channel: opened, kept connected, replies delivered once.

The thread id is ours (kept in the database), so re-opening after a restart, a dropped socket or
an expired `connect_url` finds the same thread. The socket is read for the whole life of the
session; each paced piece of a reply that arrives on it is delivered exactly once. The `scheduled`
list `respond` returns is kept in the database as the fallback: delivered at its `deliver_at`
times when the socket is down, a moment after them when it is up but a piece did not come, and
by the next process when this one stops mid-reply. Whichever comes first delivers a piece, the
others find it claimed. A piece is known by its reply's `turn_epoch` (sent as `metadata` and echoed back on
every piece) and its `position`: the same key on the socket, on a socket re-sent after a
reconnect, and in the scheduled list.

Calls that may be retried are: 502/503, timeouts, dropped connections and 429s, with backoff.
The service knows a re-sent batch or reply by its body, so a retry is never recorded twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.clock import wall_clock
from bot.humalike.errors import ConnectionLost, FinalError, HumalikeError, RateLimited, TransientError
from bot.humalike.turn_taking import TurnTakingClient
from bot.humalike.turn_taking_models import (
    InboundMessage,
    Integrations,
    MessageEvent,
    RespondResult,
    SubmitResult,
    TypingEvent,
)
from storage.natural import PlannedPiece

log = logging.getLogger(__name__)
T = TypeVar("T")

CALL_ATTEMPTS = 4
# With the socket up, a planned piece is delivered from the schedule only this long after it was
# due and did not come: the socket is the way, the schedule the safety net.
SOCKET_GRACE_SECONDS = 2.0
# A reply cut off by a restart is finished by the next process if its pieces were due this recently.
RESUME_WITHIN_SECONDS = 30.0
DELIVERED_REMEMBERED = 1000
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
EPOCH_KEY = "turn_epoch"


@dataclass(frozen=True)
class Piece:
    """One paced message of a reply, to post in the channel."""

    key: str  # unique for this piece of this reply, whichever way it arrives
    content: str
    position: int


class DeliveryLedger(Protocol):
    """Who delivered what, and what is still to come (storage/natural.py).

    `claim_delivery` is true for the first caller only; `plan` keeps a reply's schedule so that
    this process, or the next one after a restart, can deliver what the socket missed."""

    async def claim_delivery(self, message_id: str, *, thread_id: str, now: float) -> bool: ...

    async def plan(self, thread_id: str, pieces: Sequence[PlannedPiece]) -> None: ...

    async def unclaimed_plans(self, thread_id: str, *, due_after: float) -> list[PlannedPiece]: ...

    async def forget_plans(self, thread_id: str, *, now: float) -> int: ...


class ThreadLink:
    def __init__(
        self,
        client: TurnTakingClient,
        ledger: DeliveryLedger,
        *,
        thread_id: str,
        integrations: Integrations | None,
        deliver: Callable[[Piece], Awaitable[None]],
        show_typing: Callable[[], Awaitable[None]],
        on_final_error: Callable[[FinalError], Awaitable[None]],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.thread_id = thread_id
        self._client = client
        self._ledger = ledger
        self._integrations = integrations
        self._deliver = deliver
        self._show_typing = show_typing
        self._on_final_error = on_final_error
        self._sleep = sleep
        self._reader: asyncio.Task[None] | None = None
        self._fallbacks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._stopped = False
        self._delivering = asyncio.Lock()  # pieces go out one at a time, in the order they came
        self._delivered_here: set[str] = set()  # spares the database a claim it would refuse

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Open the thread and read its socket until `stop()`, re-opening it whenever it is lost; and
        deliver what a reply cut off by a restart still had to say."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name=f"turn-taking-{self.thread_id}")
            self._track(asyncio.create_task(self._resume(), name=f"turn-taking-{self.thread_id}-resume"))

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def stop(self, *, ended: bool = False) -> None:
        """Close the socket and cancel any fallback: nothing more is delivered, a reply is cut off here.

        `ended`: the session is over, so what its reply still had to say is forgotten; otherwise (the
        process is stopping) the next process to open the thread delivers it."""
        self._stopped = True
        if ended:
            await self._ledger.forget_plans(self.thread_id, now=wall_clock())
        current = asyncio.current_task()  # stopped from its own reader: that one ends by itself
        tasks = [task for task in (*self._fallbacks, self._reader) if task is not None and task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connected.clear()

    # --- Calls ------------------------------------------------------------------------------------

    async def submit(
        self, messages: Sequence[InboundMessage], *, system_prompt: str, skip_decide: bool
    ) -> SubmitResult:
        return await self._retried(
            lambda: self._client.submit_messages(
                self.thread_id, messages, system_prompt=system_prompt, skip_decide=skip_decide
            )
        )

    async def respond(self, draft: str, turn_epoch: int, *, agent_name: str, system_prompt: str) -> RespondResult:
        """Hand over the draft; if the socket is down, deliver from the `scheduled` list instead."""
        result = await self._retried(
            lambda: self._client.respond(
                self.thread_id,
                draft,
                turn_epoch,
                agent_name=agent_name,
                system_prompt=system_prompt,
                metadata={EPOCH_KEY: turn_epoch},
            )
        )
        if result.superseded or self._stopped:
            return result
        pieces = [
            PlannedPiece(self._key(turn_epoch, m.position), m.content, m.position, m.deliver_at.timestamp())
            for m in result.scheduled
        ]
        await self._ledger.plan(self.thread_id, pieces)
        self._deliver_later(pieces, grace=SOCKET_GRACE_SECONDS if self.connected else 0.0)
        return result

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        delay = FIRST_BACKOFF_SECONDS
        for attempt in range(1, CALL_ATTEMPTS + 1):
            try:
                return await call()
            except TransientError as error:
                if attempt == CALL_ATTEMPTS:
                    raise
                wait = max(delay, error.retry_after or 0.0) if isinstance(error, RateLimited) else delay
                log.info("Turn-taking call failed (%s); trying again in %.0f s", error, wait)
                await self._sleep(min(wait, MAX_BACKOFF_SECONDS))
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        raise AssertionError("unreachable")

    # --- The socket -------------------------------------------------------------------------------

    async def _read(self) -> None:
        delay = FIRST_BACKOFF_SECONDS
        while not self._stopped:
            try:
                opened = await self._client.open_thread(self.thread_id, integrations=self._integrations)
                async with self._client.connect(opened) as socket:
                    self._connected.set()
                    delay = FIRST_BACKOFF_SECONDS
                    async for event in socket:
                        if isinstance(event, MessageEvent):
                            epoch = (event.data.metadata or {}).get(EPOCH_KEY)
                            key = self._key(epoch, event.data.position) if epoch is not None else event.data.message_id
                            await self._deliver_once(Piece(key, event.data.content, event.data.position))
                        elif isinstance(event, TypingEvent) and event.data.typing:
                            await self._show_typing()
            except FinalError as error:  # 401, 402, 403: re-opening would only fail again
                self._connected.clear()
                await self._on_final_error(error)
                return
            except (ConnectionLost, HumalikeError) as error:
                log.info("Turn-taking thread %s lost its socket (%s); re-opening", self.thread_id, error)
            finally:
                self._connected.clear()
            await self._sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _key(self, epoch: object, position: int) -> str:
        return f"{self.thread_id}/{epoch}/{position}"

    async def _resume(self) -> None:
        pieces = await self._ledger.unclaimed_plans(self.thread_id, due_after=wall_clock() - RESUME_WITHIN_SECONDS)
        if pieces:
            log.info("Finishing %d piece(s) of a reply cut off in thread %s", len(pieces), self.thread_id)
            self._deliver_later(pieces, grace=SOCKET_GRACE_SECONDS)

    def _deliver_later(self, pieces: Sequence[PlannedPiece], *, grace: float) -> None:
        """Deliver each piece `grace` seconds after it was due, unless the socket did first."""

        async def deliver() -> None:
            for planned in sorted(pieces, key=lambda p: (p.deliver_at, p.position)):
                await self._sleep(max(0.0, planned.deliver_at + grace - wall_clock()))
                await self._deliver_once(Piece(planned.key, planned.content, planned.position))

        self._track(asyncio.create_task(deliver(), name=f"turn-taking-{self.thread_id}-scheduled"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._fallbacks.add(task)
        task.add_done_callback(self._fallbacks.discard)

    async def _deliver_once(self, piece: Piece) -> None:
        async with self._delivering:
            if self._stopped or piece.key in self._delivered_here:
                return
            self._delivered_here.add(piece.key)
            if len(self._delivered_here) > DELIVERED_REMEMBERED:
                self._delivered_here.clear()  # the database still knows: this only saves asking it
            if not await self._ledger.claim_delivery(piece.key, thread_id=self.thread_id, now=wall_clock()):
                return  # delivered already: from the other path, or before a reconnect
            await self._deliver(piece)
