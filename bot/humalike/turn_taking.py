"""The turn-taking client: whether a persona should speak now, and its reply paced out over a socket.

Four actions (`open_thread`, `submit_messages`, `respond`, `record_event`), the free
`whoami` of the base, and `ThreadSocket`, the reader of a thread's WebSocket. Retrying
502s and timeouts belongs to the caller; this layer makes a retry safe: the same
arguments always send the same body, and that body is how the service knows a batch
or a reply it has already recorded (the contract has no idempotency key).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import aiohttp
import yarl
from pydantic import SecretStr, ValidationError

from bot.humalike.errors import ConnectionLost, NetworkError
from bot.humalike.http import HumalikeHTTP, parse_model
from bot.humalike.turn_taking_models import (
    EVENT_TYPES,
    MAX_BATCH,
    ActivityType,
    Event,
    InboundMessage,
    Integrations,
    OpenedThread,
    OpenThreadRequest,
    OtherEvent,
    Pacing,
    RealtimeGrant,
    RecordEventRequest,
    RespondRequest,
    RespondResult,
    SubmitRequest,
    SubmitResult,
)
from bot.redaction import redacted_url

log = logging.getLogger(__name__)

OPEN_THREAD_PATH = "/v1/turn-taking/actions/open_thread"
SUBMIT_MESSAGES_PATH = "/v1/turn-taking/actions/submit_messages"
RESPOND_PATH = "/v1/turn-taking/actions/respond"
RECORD_EVENT_PATH = "/v1/turn-taking/actions/record_event"


class TurnTakingClient(HumalikeHTTP):
    """One account's turn-taking threads. Values out of the documented limits raise `ValueError`
    before anything is sent; refusals by the service raise the `HumalikeError`s of `errors.py`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        token: SecretStr,
        timeout: float = 15.0,
        heartbeat: float | None = 20.0,
    ) -> None:
        super().__init__(session, base_url=base_url, token=token, timeout=timeout)
        self._connect_timeout = timeout
        # A ping this often, so a socket that went silent (half-open) is found lost, not waited on.
        self._heartbeat = heartbeat

    async def open_thread(
        self, thread_id: str | UUID | None = None, *, integrations: Integrations | None = None
    ) -> OpenedThread:
        """Open a thread (free), or re-open ours: with the same `thread_id` (a UUID) it creates
        nothing new and only re-issues a `connect_url`, the path after a restart, a dropped
        socket or an expired URL. `integrations=None` leaves a re-opened thread's as they were."""
        request = OpenThreadRequest.model_validate({"thread_id": thread_id, "integrations": integrations})
        return parse_model(OpenedThread, await self._request("POST", OPEN_THREAD_PATH, request.body()))

    async def submit_messages(
        self,
        thread_id: str | UUID,
        messages: Sequence[InboundMessage],
        *,
        system_prompt: str | None = None,
        skip_decide: bool = False,
    ) -> SubmitResult:
        """Hand over 1-20 inbound messages; answers `speak` or `stay_silent` and the `turn_epoch`.

        Billed, unless `skip_decide` (the persona was addressed: always `speak`) or a message
        `has_media`. Idempotent: re-sent with the same arguments it is not recorded or billed twice.
        """
        request = SubmitRequest(
            thread_id=str(thread_id), messages=tuple(messages), system_prompt=system_prompt, skip_decide=skip_decide
        )
        return parse_model(SubmitResult, await self._request("POST", SUBMIT_MESSAGES_PATH, request.body()))

    async def respond(
        self,
        thread_id: str | UUID,
        content: str,
        turn_epoch: int,
        *,
        agent_name: str | None = None,
        system_prompt: str | None = None,
        pacing: Pacing | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> RespondResult:
        """Hand over the drafted reply for the `turn_epoch` that said `speak`; the pieces it is
        paced into arrive on the socket, and `scheduled` says when (the fallback if the socket is
        down). `superseded` means a newer batch came first: nothing scheduled, nothing billed.
        Otherwise billed twice (the reply and its Theory of Mind pass); idempotent like a submit.
        `metadata` (at most 4096 bytes) comes back on every piece, to tell our replies apart."""
        request = RespondRequest(
            thread_id=str(thread_id),
            content=content,
            turn_epoch=turn_epoch,
            system_prompt=system_prompt,
            agent_name=agent_name,
            pacing=pacing,
            metadata=metadata,
        )
        return parse_model(RespondResult, await self._request("POST", RESPOND_PATH, request.body()))

    async def record_event(
        self, thread_id: str | UUID, activity: ActivityType | str, sender: str, *, client_ts: datetime | None = None
    ) -> list[str]:
        """Report typing or an edit (free); only useful on a thread with social signals. Its tags."""
        request = RecordEventRequest.model_validate(
            {"thread_id": str(thread_id), "type": activity, "sender": sender, "client_ts": client_ts}
        )
        body = await self._request("POST", RECORD_EVENT_PATH, request.body())
        tags = body.get("tags") if isinstance(body, dict) else None
        return [str(tag) for tag in tags] if isinstance(tags, list) else []

    def connect(self, grant: OpenedThread | RealtimeGrant | str) -> ThreadSocket:
        """The thread's WebSocket, not yet open: `async with client.connect(opened) as socket`."""
        if isinstance(grant, OpenedThread):
            grant = grant.realtime
        url = grant.connect_url.get_secret_value() if isinstance(grant, RealtimeGrant) else grant
        return ThreadSocket(self._session, url, heartbeat=self._heartbeat, timeout=self._connect_timeout)


def batches(messages: Sequence[InboundMessage]) -> list[tuple[InboundMessage, ...]]:
    """`messages` in order, cut into the batches `submit_messages` takes (at most 20 each)."""
    return [tuple(messages[start : start + MAX_BATCH]) for start in range(0, len(messages), MAX_BATCH)]


class ThreadSocket:
    """A thread's WebSocket, read as typed events: `async for event in socket`.

    Iteration ends quietly once we `close()`. It raises `ConnectionLost` when the service
    refuses the `connect_url` (expired, or never valid) or ends the socket without our asking
    (dropped, or silent past the heartbeat): re-open the thread and connect again. The URL
    is used exactly as given and carries its own credential: no bearer token goes with it.
    """

    def __init__(self, session: aiohttp.ClientSession, url: str, *, heartbeat: float | None, timeout: float) -> None:
        self._session = session
        self._url = url
        self._heartbeat = heartbeat
        self._timeout = timeout
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._closing = False

    async def open(self) -> None:
        where = redacted_url(self._url)  # the query is the socket's credential
        try:
            async with asyncio.timeout(self._timeout):
                self._socket = await self._session.ws_connect(
                    yarl.URL(self._url, encoded=True),
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._timeout),
                )
        except aiohttp.WSServerHandshakeError as error:
            log.info("Turn-taking socket refused at %s (HTTP %s): re-open the thread", where, error.status)
            raise ConnectionLost("the thread's connect_url was refused", status=error.status) from None
        except TimeoutError:
            raise NetworkError(f"connecting to {where} timed out") from None
        except aiohttp.ClientError as error:
            raise NetworkError(f"connecting to {where} failed: {type(error).__name__}") from None

    async def close(self) -> None:
        """Close the socket; a reader waiting on it stops without an error."""
        self._closing = True
        if self._socket is not None:
            await self._socket.close()

    @property
    def closed(self) -> bool:
        return self._socket is None or self._socket.closed

    async def __aenter__(self) -> ThreadSocket:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> ThreadSocket:
        return self

    async def __anext__(self) -> Event:
        if self._socket is None:
            raise RuntimeError("open() the socket before reading it")
        while True:
            frame = await self._socket.receive()
            if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                event = parse_event(frame.data)
                if event is not None:
                    return event
                continue
            if frame.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
                continue
            # CLOSE, CLOSING, CLOSED or ERROR: the socket is over.
            if self._closing:
                raise StopAsyncIteration
            code = self._socket.close_code
            log.info("Turn-taking socket dropped (close code %s): re-open the thread", code)
            raise ConnectionLost("the thread's socket was dropped", close_code=code)


def parse_event(frame: str | bytes) -> Event | None:
    """One frame as its typed event; None (logged, skipped) for a frame off the contract."""
    try:
        raw = json.loads(frame)
    except ValueError:
        log.warning("Skipped a turn-taking frame that is not JSON")
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(kind, str):
        log.warning("Skipped a turn-taking frame without a type")
        return None
    model = EVENT_TYPES.get(kind, OtherEvent)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        log.warning("Skipped a %s event off the contract (%d errors)", kind[:40], error.error_count())
        return None


__all__ = ["ThreadSocket", "TurnTakingClient", "batches", "parse_event"]
