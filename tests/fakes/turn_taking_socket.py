"""The realtime half of the fake turn-taking service: connect_url grants, live sockets, pacing.

A thread's events go to every socket open on it at the moment they are due; with none
open they are lost to the socket (kept in `Thread.missed`), as on a pub/sub channel
without history. Events carry the overview's envelope: `{id, type, channel, ts, data}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.humalike import error_body
from tests.fakes.turn_taking_threads import Thread


@dataclass
class Grant:
    thread: Thread
    expires_at: float


@dataclass(frozen=True)
class SocketRecord:
    """One attempt to open a socket: `status` 101 (accepted) or 401 (refused, with `reason`).
    `authorization`: whether a bearer header came along, which a connect_url never needs."""

    thread_id: str | None
    status: int
    authorization: bool
    reason: str = ""


@dataclass(eq=False)
class _Live:
    thread: Thread
    socket: web.WebSocketResponse
    request: web.Request


class ThreadSockets:
    def __init__(self, now_iso: Callable[[], str]) -> None:
        self._now_iso = now_iso
        self.grants: dict[str, Grant] = {}  # the connect_url's `c` -> what it opens
        self.records: list[SocketRecord] = []
        self._live: list[_Live] = []
        self._changed = asyncio.Condition()
        self._pacing: set[asyncio.Task[None]] = set()
        self._locks: dict[int, asyncio.Lock] = {}

    def grant(self, thread: Thread, expires_at: float) -> str:
        code = secrets.token_hex(16)
        self.grants[code] = Grant(thread, expires_at)
        return code

    def expire(self, now: float, thread_id: str | None) -> None:
        for grant in self.grants.values():
            if thread_id is None or grant.thread.id == thread_id:
                grant.expires_at = min(grant.expires_at, now)

    def open_count(self, thread_id: str | None = None) -> int:
        return sum(1 for live in self._live if thread_id is None or live.thread.id == thread_id)

    async def wait_open(self, thread_id: str | None = None, count: int = 1) -> None:
        """Return once at least `count` sockets are open (on `thread_id`, or on any thread)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.open_count(thread_id) >= count)

    async def serve(self, request: web.Request, now: float) -> web.StreamResponse:
        grant = self.grants.get(request.query.get("c", ""))
        authorization = "Authorization" in request.headers
        if grant is None or now >= grant.expires_at:
            reason = "unknown connect_url" if grant is None else "connect_url expired"
            self.records.append(SocketRecord(grant.thread.id if grant else None, 401, authorization, reason))
            response = web.json_response(error_body("UNAUTHORIZED", reason), status=401)
            response.headers["x-request-id"] = f"req_{uuid.uuid4().hex[:20]}"
            return response
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        live = _Live(grant.thread, socket, request)
        self.records.append(SocketRecord(grant.thread.id, 101, authorization))
        async with self._changed:
            self._live.append(live)
            self._changed.notify_all()
        try:
            async for _ in socket:  # nothing a client sends is acted on
                pass
        finally:
            await self._forget(live)
        return socket

    async def drop(self, thread_id: str | None, close_code: int | None) -> int:
        cut = [live for live in self._live if thread_id is None or live.thread.id == thread_id]
        for live in cut:
            await self._forget(live)
            if close_code is None and live.request.transport is not None:
                live.request.transport.abort()
            elif close_code is not None:
                await live.socket.close(code=close_code)
        return len(cut)

    def pace(self, thread: Thread, scheduled: list[dict[str, Any]], metadata: Any, beat: float) -> None:
        task = asyncio.create_task(self._pace(thread, scheduled, metadata, beat))
        self._pacing.add(task)
        task.add_done_callback(self._pacing.discard)

    async def idle(self) -> None:
        while self._pacing:
            await asyncio.gather(*self._pacing)

    async def shutdown(self) -> None:
        for task in list(self._pacing):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._pacing, return_exceptions=True)
        for live in list(self._live):
            await self._forget(live)
            await live.socket.close(code=1001)  # going away

    async def _pace(self, thread: Thread, scheduled: list[dict[str, Any]], metadata: Any, beat: float) -> None:
        """Typing, a beat, the message, typing off; one reply at a time per thread."""
        async with self._locks.setdefault(id(thread), asyncio.Lock()):
            for item in scheduled:
                await self.emit(thread, "turn_taking.typing", {"thread_id": thread.id, "typing": True})
                await asyncio.sleep(beat)
                message = {
                    "message_id": item["id"],
                    "thread_id": thread.id,
                    "content": item["content"],
                    "position": item["position"],
                    "sent_at": self._now_iso(),
                    "metadata": metadata,
                }
                await self.emit(thread, "turn_taking.message", message)
                await self.emit(thread, "turn_taking.typing", {"thread_id": thread.id, "typing": False})

    async def emit(self, thread: Thread, kind: str, data: dict[str, Any]) -> None:
        envelope = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "channel": thread.channel,
            "ts": self._now_iso(),
            "data": data,
        }
        listeners = [live for live in self._live if live.thread is thread and not live.socket.closed]
        (thread.sent if listeners else thread.missed).append(envelope)
        text = json.dumps(envelope)
        for live in listeners:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await live.socket.send_str(text)

    async def send_raw(self, thread: Thread, text: str) -> int:
        """Send `text` as it is to the thread's sockets, as a service off its contract might."""
        listeners = [live for live in self._live if live.thread is thread and not live.socket.closed]
        for live in listeners:
            await live.socket.send_str(text)
        return len(listeners)

    async def _forget(self, live: _Live) -> None:
        async with self._changed:
            if live in self._live:
                self._live.remove(live)
            self._changed.notify_all()
