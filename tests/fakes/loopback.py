"""Serving a fake on a free loopback port, for the tests and for anyone trying the bot."""

from __future__ import annotations

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
