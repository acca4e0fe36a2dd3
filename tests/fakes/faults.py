"""Misbehaviour a fake Humalike endpoint can inject: an error status, a `null` body, a hang, a drop.

Shared by the fake of the persona endpoints (`humalike.py`) and the fake of turn-taking
(`turn_taking.py`): one service, failing the same ways.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.fakes.loopback import HeldRequests

FaultKind = Literal["status", "null", "hang", "drop"]


@dataclass(frozen=True)
class Fault:
    """One misbehaving answer.

    - `status`: answer `status` with `body` (None: the documented body for that status; a str or
      bytes body is sent raw as text, like a proxy's HTML page) and extra `headers`.
    - `null`: answer 200 with the body `null`.
    - `hang`: hold the request open on an `asyncio.Event`, never a clock, so it lasts on a
      virtual clock too. It ends when the client gives up and closes the connection (the test
      server cancels the handler), when `release_hangs()` is called (it then answers normally),
      when `max_seconds` of event-loop time pass if given (then answers normally), or when
      `serve()` exits (the client then sees the connection close).
    - `drop`: abort the TCP connection without an answer.

    `commit` (calls that change something): do the work first (accept and bill the job, record
    the batch), then misbehave, as when the service did it but the answer was lost.
    """

    kind: FaultKind
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] | None = None
    max_seconds: float | None = None
    commit: bool = False

    @classmethod
    def error(
        cls, status: int, body: Any = None, headers: Mapping[str, str] | None = None, *, commit: bool = False
    ) -> Fault:
        return cls("status", status=status, body=body, headers=headers, commit=commit)

    @classmethod
    def null(cls) -> Fault:
        return cls("null")

    @classmethod
    def hang(cls, max_seconds: float | None = None, *, commit: bool = False) -> Fault:
        return cls("hang", max_seconds=max_seconds, commit=commit)

    @classmethod
    def drop(cls, *, commit: bool = False) -> Fault:
        return cls("drop", commit=commit)


class Dropped(web.Response):
    """Marks an answer never sent: the connection was aborted."""


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int
    target: str | None  # what it is for (a job kind, a job id, a thread id), None for any


class FaultQueue:
    """Faults queued per place (a kind of call), each for one target or for any, first in first out."""

    def __init__(self, default_body: Callable[[int], Any]) -> None:
        self.held = HeldRequests()
        self._default_body = default_body  # the documented body of an error status, made per answer
        self._queues: dict[str, list[_QueuedFault]] = {}

    def add(
        self,
        where: str,
        fault: int | Fault,
        body: Any,
        headers: Mapping[str, str] | None,
        times: int,
        target: str | None,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        if isinstance(fault, int):
            fault = Fault.error(fault, body, headers)
        elif body is not None or headers is not None:
            raise ValueError("body and headers go inside the Fault")
        self._queues.setdefault(where, []).append(_QueuedFault(fault, times, target))

    def take(self, where: str, target: str | None) -> Fault | None:
        queue = self._queues.get(where, [])
        for index, queued in enumerate(queue):
            if queued.target is None or queued.target == target:
                queued.remaining -= 1
                if queued.remaining == 0:
                    del queue[index]
                return queued.fault
        return None

    async def apply(
        self, request: web.Request, fault: Fault, proceed: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Answer as `fault` says; `proceed` is the normal answer (run first if `commit`)."""
        done = await proceed() if fault.commit else None
        if fault.kind == "status":
            return self.response(fault)
        if fault.kind == "null":
            return json_response(200, None)
        if fault.kind == "hang":
            await self.held.hold(fault.max_seconds)
            return done if done is not None else await proceed()
        if request.transport is not None:
            request.transport.abort()
        return Dropped()

    def response(self, fault: Fault) -> web.Response:
        if isinstance(fault.body, str | bytes):
            text = fault.body.decode() if isinstance(fault.body, bytes) else fault.body
            response = web.Response(status=fault.status, text=text, content_type="text/plain")
        else:
            body = self._default_body(fault.status) if fault.body is None else fault.body
            response = json_response(fault.status, body)
        for name, value in (fault.headers or {}).items():
            response.headers[name] = value
        return response


def json_response(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
