"""Internal types: the gateway session and connection, fault rules, a parsed REST request and its answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from tests.wire.openapi import Operation


@dataclass
class _Session:
    id: str
    intents: int
    shard: int = 0
    seq: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    connection: _Connection | None = None
    on_sent: dict[int, Callable[[], None]] = field(default_factory=dict)
    resumable: bool = True


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.path = request.path
        self.session: _Session | None = None
        self.closed = asyncio.Event()
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> bool:
        async with self._lock:
            if self.ws.closed or self.closed.is_set():
                return False
            try:
                await self.ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError):
                return False
            return True


@dataclass
class _RateLimit:
    method: str
    template: str
    remaining: int
    retry_after: float
    is_global: bool


@dataclass
class _Latency:
    seconds: float
    method: str | None
    template: str | None


@dataclass
class _Request:
    """A REST request, parsed: what a route handler gets."""

    method: str
    path: str
    params: dict[str, str]
    query: MultiDictProxy[str]
    json: Any
    files: list[tuple[str, str, bytes, str]]  # (field name, file name, data, content type)
    operation: Operation
    arrived: float  # time.monotonic() when the request came in, before any latency the test added


@dataclass
class _Unchecked:
    """A body whose schema check was deferred (see `defer_checks`), and our answer once there is one."""

    method: str
    path: str
    operation: Operation
    body: Any
    answer: Any = None  # a 2xx JSON answer, checked too
    status: int = 0  # 0 while the request is still being answered
    request_checked: bool = False


@dataclass
class _Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> _Answer:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return _Answer(status, body)


def _form_error(key: str, code: str, message: str) -> _Answer:
    return _error(400, 50035, "Invalid Form Body", {key: {"_errors": [{"code": code, "message": message}]}})


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


Handler = Callable[[_Request], Awaitable[_Answer]]
