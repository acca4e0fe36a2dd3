"""A website serving pictures over https, as the links members give `/persona avatar url:` lead to.

It answers on loopback as `https://images.test:PORT/...`, with a certificate for images.test made for
the tests (tests/data/images_test.crt, self-signed, valid until 2126). `client_session()` gives the
session the bot would use, trusting that certificate and resolving images.test to loopback; the
bot's own guard against private addresses (bot/image_download.py) is tested on its own.
"""

from __future__ import annotations

import socket
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

DATA = Path(__file__).resolve().parent.parent / "data"
CERTIFICATE = DATA / "images_test.crt"
KEY = DATA / "images_test.key"
HOST = "images.test"


class ImageHost:
    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes, str]] = {}  # path -> (status, body, content type)
        self.redirects: dict[str, str] = {}  # path -> Location
        self.requests: Counter[str] = Counter()
        self.port = 0
        self.app = web.Application()
        self.app.router.add_get("/{path:.*}", self._serve)

    def put(self, path: str, body: bytes, *, content_type: str = "image/png", status: int = 200) -> str:
        """Serve `body` at `path`; its https link."""
        self.files[path] = (status, body, content_type)
        return self.link(path)

    def remove(self, path: str) -> None:
        """The link stops working: 404 from now on."""
        self.files.pop(path, None)

    def link(self, path: str) -> str:
        return f"https://{HOST}:{self.port}/{path}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.requests[path] += 1
        if path in self.redirects:
            raise web.HTTPFound(self.redirects[path])
        if path not in self.files:
            raise web.HTTPNotFound()
        status, body, content_type = self.files[path]
        return web.Response(status=status, body=body, content_type=content_type)


class _ImagesTestResolver(AbstractResolver):
    """images.test is this machine; every other name is unknown."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != HOST:
            raise OSError(f"unknown host {host}")
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


def client_session() -> aiohttp.ClientSession:
    trusting = ssl.create_default_context(cafile=str(CERTIFICATE))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting, resolver=_ImagesTestResolver()))


@asynccontextmanager
async def serve_images(host: ImageHost) -> AsyncIterator[ImageHost]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(CERTIFICATE), str(KEY))
    runner = web.AppRunner(host.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield host
    finally:
        await runner.cleanup()
