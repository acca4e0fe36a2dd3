"""Discord keeps a webhook's avatar; simcord 3.2.1 accepts it and throws it away. This puts it back.

What Discord does (openapi.json, "Create Webhook" and the Webhook object): `POST /channels/{id}/webhooks`
takes `avatar` as a data URI; the webhook object then has `avatar`, the picture's hash, and Discord's
CDN serves the picture at `https://cdn.discordapp.com/avatars/{webhook id}/{hash}.png` for as long as
the webhook exists. Here the hash is the picture's MD5 (Discord's are opaque), the picture is put on
simcord's CDN at the URL discord.py builds for it, and every webhook object simcord serializes
(create, fetch) carries the hash.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from simcord.backend import serializers
from simcord.http import router
from simcord.http.routes import channels

DISCORD_CDN = "https://cdn.discordapp.com"
_hashes: dict[int, str] = {}  # webhook id -> its avatar's hash (ids are snowflakes: unique across tests)


def avatar_url(webhook_id: int, digest: str) -> str:
    """The URL discord.py gives a webhook's avatar (`Webhook.avatar.url`)."""
    return f"{DISCORD_CDN}/avatars/{webhook_id}/{digest}.png?size=1024"


@contextmanager
def webhook_avatars_kept() -> Iterator[None]:
    original_payload = serializers.webhook_payload
    original_create = channels.create_webhook

    def webhook_payload(backend: Any, webhook: Any, *, include_token: bool = True) -> dict[str, Any]:
        payload = original_payload(backend, webhook, include_token=include_token)
        payload["avatar"] = _hashes.get(webhook.id)
        return payload

    def create_webhook(ctx: router.RequestContext) -> Any:
        payload = original_create(ctx)
        data_uri = (ctx.json or {}).get("avatar")
        if data_uri:
            picture = base64.b64decode(data_uri.split(",", 1)[1])
            digest = hashlib.md5(picture).hexdigest()
            webhook_id = int(payload["id"])
            _hashes[webhook_id] = digest
            ctx.backend.cdn._blobs[avatar_url(webhook_id, digest)] = picture
            payload["avatar"] = digest
        return payload

    routes = router._ROUTES["POST"]
    index = next(i for i, (_, handler) in enumerate(routes) if handler is original_create)
    routes[index] = (routes[index][0], create_webhook)
    serializers.webhook_payload = webhook_payload
    try:
        yield
    finally:
        routes[index] = (routes[index][0], original_create)
        serializers.webhook_payload = original_payload
