"""Fetching a picture a member linked to, once: https only, bounded in size and time.

The link is untrusted: every hop of a redirect must be https too, the body is read no further than
the avatar limit, and the whole exchange has a deadline. Whatever fails becomes an `AvatarError`
the member can act on. A member's link also must not reach the machine the bot runs on or its
private network: `PublicOnlyResolver` refuses host names that resolve there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.avatars import MAX_AVATAR_BYTES, AvatarError, check_size

DOWNLOAD_SECONDS = 10.0  # the command is deferred; a picture that takes longer is not worth the wait
MAX_REDIRECTS = 3
READ_CHUNK = 64 * 1024
MAX_LINK_LENGTH = 2000


def check_link(link: str) -> URL:
    """The link as a URL, if it is an https link to a named host; AvatarError saying why if not."""
    text = link.strip().strip("<>")  # Discord users wrap links in <> to hide their preview
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or len(text) > MAX_LINK_LENGTH or not url.is_absolute() or not url.host:
        raise AvatarError("That is not a link I can read. Give a whole https:// link to a picture.")
    if url.scheme != "https":
        raise AvatarError("Give an https:// link: I only download pictures over a secure connection.")
    if not is_public_host(url.host):
        raise AvatarError("That link points into a private network. Give a public https:// link to a picture.")
    return url


def is_public_host(host: str) -> bool:
    """False for an address literal that is not public (aiohttp skips the resolver for those)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return host.lower() != "localhost"  # a name: the resolver checks what it resolves to


async def download_image(session: aiohttp.ClientSession, link: str) -> bytes:
    """The bytes at `link`, following at most MAX_REDIRECTS https redirects; AvatarError when it fails."""
    url = check_link(link)
    try:
        async with asyncio.timeout(DOWNLOAD_SECONDS):
            for _ in range(MAX_REDIRECTS + 1):
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = check_link(str(url.join(URL(response.headers["Location"]))))
                        continue
                    if response.status != 200:
                        raise AvatarError(
                            f"That link answered {response.status} instead of a picture. Check it opens in a "
                            "browser, or upload the picture instead."
                        )
                    if response.content_length is not None:
                        check_size(response.content_length)
                    return await _read_bounded(response)
            raise AvatarError("That link redirects too many times. Give the picture's own link, or upload it.")
    except TimeoutError:
        raise AvatarError(
            f"That link took longer than {DOWNLOAD_SECONDS:.0f} s to download. Upload the picture instead."
        ) from None
    except aiohttp.ClientError:
        raise AvatarError(
            "I could not download that link (the site did not answer or refused me). Upload the picture instead."
        ) from None


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        body.extend(chunk)
        if len(body) > MAX_AVATAR_BYTES:
            check_size(len(body))
    return bytes(body)


class PublicOnlyResolver(AbstractResolver):
    """Resolves as the default resolver does, but refuses a host with any address that is not public."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            if not ipaddress.ip_address(entry["host"]).is_global:
                raise OSError(f"{host} is not a public address")  # aiohttp makes it a ClientConnectorDNSError
        return found

    async def close(self) -> None:
        await self._inner.close()


def download_session() -> aiohttp.ClientSession:
    """The session member links are fetched with: public addresses only, a short connection pool."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=PublicOnlyResolver(), limit=10),
        headers={"User-Agent": "HumalikePersonaBot (avatar download)"},
    )
