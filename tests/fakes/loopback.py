"""Serving a fake on a free loopback port, for the tests and for anyone trying the bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web
from aiohttp.test_utils import TestServer


class ServableFake(Protocol):
    app: web.Application
    base_url: str | None

    def release_hangs(self) -> None: ...


@contextlib.asynccontextmanager
async def serve_fake(fake: ServableFake, *, path: str = "") -> AsyncIterator[str]:
    """Yield the fake's base URL (`http://127.0.0.1:PORT` + `path`), also set as `fake.base_url`.

    On exit it releases any held request before closing, so shutdown never waits on a hang.
    """
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url(path or "/")).rstrip("/")
    try:
        yield fake.base_url
    finally:
        fake.base_url = None
        fake.release_hangs()
        await server.close()


class HeldRequests:
    """Requests a fake holds unanswered (a hang, or latency) until released or out of time."""

    def __init__(self) -> None:
        self.count = 0
        self._release = asyncio.Event()
        self._changed = asyncio.Condition()

    async def hold(self, max_seconds: float | None = None) -> None:
        """Hold this request until `release_all()`, or for at most `max_seconds`."""
        release = self._release
        async with self._changed:
            self.count += 1
            self._changed.notify_all()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), max_seconds)
        finally:
            self.count -= 1

    def release_all(self) -> None:
        """Let every held request answer now; later ones are held again."""
        self._release.set()
        self._release = asyncio.Event()

    async def wait_for(self, count: int = 1) -> None:
        """Return once at least `count` requests are held."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.count >= count)
