"""`ChannelRoutes`: REST under `/channels/{channel_id}`: the channel, its messages, typing, its webhooks."""

from __future__ import annotations

import secrets
import time

from tests.wire.standin.constants import FORBIDDEN_WEBHOOK_NAMES, MANAGE_WEBHOOKS, MESSAGE_REPLY, WEBHOOKS_PER_CHANNEL
from tests.wire.standin.messages import Messages
from tests.wire.standin.plumbing import Handler, _Answer, _error, _form_error, _Request
from tests.wire.standin.records import ChannelWebhook, StoredMessage, avatar_hash
from tests.wire.standin.world import StandInChannel


class ChannelRoutes(Messages):
    """What a bot does in a channel with its own token."""

    def _channel_routes(self) -> dict[tuple[str, str], Handler]:
        message = "/channels/{channel_id}/messages/{message_id}"
        return {
            ("GET", "/channels/{channel_id}"): self._get_channel,
            ("GET", "/channels/{channel_id}/messages"): self._list_messages,
            ("POST", "/channels/{channel_id}/messages"): self._create_message,
            ("GET", message): self._get_message,
            ("PATCH", message): self._edit_message,
            ("DELETE", message): self._delete_message,
            ("POST", "/channels/{channel_id}/typing"): self._typing,
            ("GET", "/channels/{channel_id}/webhooks"): self._list_webhooks,
            ("POST", "/channels/{channel_id}/webhooks"): self._create_webhook,
        }

    def _channel(self, request: _Request) -> StandInChannel | _Answer:
        channel = self.channels.get(int(request.params["channel_id"]))
        return channel if channel is not None else _error(404, 10003, "Unknown Channel")

    def _channel_message(self, request: _Request) -> StoredMessage | _Answer:
        channel = self._channel(request)
        if isinstance(channel, _Answer):
            return channel
        message = self.messages.get(int(request.params["message_id"]))
        if message is None or message.deleted or message.ephemeral or message.channel_id != channel.id:
            return _error(404, 10008, "Unknown Message")
        return message

    async def _get_channel(self, request: _Request) -> _Answer:
        channel = self._channel(request)
        return channel if isinstance(channel, _Answer) else _Answer(200, channel.payload())

    async def _list_messages(self, request: _Request) -> _Answer:
        channel = self._channel(request)
        if isinstance(channel, _Answer):
            return channel
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        shown = sorted(self.channel_messages(channel), key=lambda message: message.id, reverse=True)
        if "before" in request.query:
            shown = [message for message in shown if message.id < int(request.query["before"])]
        if "after" in request.query:
            after = int(request.query["after"])
            shown = sorted((message for message in shown if message.id > after), key=lambda m: m.id)[:limit]
            shown.reverse()
        if "around" in request.query:
            around = int(request.query["around"])
            older = [message for message in shown if message.id <= around][: (limit + 1) // 2]
            newer = [message for message in shown if message.id > around][-(limit // 2) :] if limit > 1 else []
            shown = newer + older
        base = self._attachment_base()
        return _Answer(200, [message.payload(base) for message in shown[:limit]])

    async def _create_message(self, request: _Request) -> _Answer:
        channel = self._channel(request)
        if isinstance(channel, _Answer):
            return channel
        body = request.json or {}
        if not (body.get("content") or body.get("embeds") or request.files or body.get("components")):
            return _error(400, 50006, "Cannot send an empty message")
        message = self._new_message(channel.id, author=self.bot.payload())
        reference = body.get("message_reference")
        referenced = None
        if reference:
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                return _form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            if referenced is not None:
                message.type = MESSAGE_REPLY
                message.message_reference = {
                    "type": 0,
                    "message_id": str(referenced.id),
                    "channel_id": str(referenced.channel_id),
                    "guild_id": str(channel.guild_id),
                }
        self._apply_body(message, body, request.files, creating=True)
        self._store(message)
        await self._dispatch_message("MESSAGE_CREATE", message, referenced=referenced)
        return _Answer(200, message.payload(self._attachment_base()))

    async def _get_message(self, request: _Request) -> _Answer:
        message = self._channel_message(request)
        if isinstance(message, _Answer):
            return message
        return _Answer(200, message.payload(self._attachment_base()))

    async def _edit_message(self, request: _Request) -> _Answer:
        message = self._channel_message(request)
        if isinstance(message, _Answer):
            return message
        is_own = message.author.get("id") == str(self.bot.id)
        if not is_own or (message.webhook_id is not None and message.webhook_id != self.application_id):
            return _error(403, 50005, "Cannot edit a message authored by another user")
        return await self._edit(message, request)

    async def _delete_message(self, request: _Request) -> _Answer:
        message = self._channel_message(request)
        if isinstance(message, _Answer):
            return message
        await self.delete_message(message)
        return _Answer(204)

    async def _typing(self, request: _Request) -> _Answer:
        channel = self._channel(request)
        if isinstance(channel, _Answer):
            return channel
        self.typing.append((channel.id, time.monotonic()))
        return _Answer(204)

    async def _list_webhooks(self, request: _Request) -> _Answer:
        channel = self._channel(request)
        if isinstance(channel, _Answer):
            return channel
        found = [webhook for webhook in self.webhooks.values() if webhook.channel_id == channel.id]
        return _Answer(200, [webhook.payload(self.users[webhook.creator_id].payload()) for webhook in found])

    async def _create_webhook(self, request: _Request) -> _Answer:
        channel = self._channel(request)
        if isinstance(channel, _Answer):
            return channel
        if channel.is_thread:
            return _error(400, 50024, "Cannot execute action on this channel type")
        guild = self.guilds[channel.guild_id]
        if not guild.permissions_of(self.bot.id) & MANAGE_WEBHOOKS:
            return _error(403, 50013, "Missing Permissions")
        name = (request.json or {}).get("name") or ""
        if any(word in name.lower() for word in FORBIDDEN_WEBHOOK_NAMES):
            return _form_error("name", "WEBHOOK_INVALID_NAME", f"Webhook names cannot contain {name!r}")
        if sum(1 for webhook in self.webhooks.values() if webhook.channel_id == channel.id) >= WEBHOOKS_PER_CHANNEL:
            return _error(400, 30007, "Maximum number of webhooks reached (15)")
        picture = (request.json or {}).get("avatar")
        avatar = avatar_hash(picture) if picture else None
        if picture and avatar is None:
            return _form_error("avatar", "IMAGE_INVALID", "Invalid image data")
        webhook = ChannelWebhook(
            id=self.ids.next(),
            token=secrets.token_urlsafe(51),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            name=name,
            creator_id=self.bot.id,
            application_id=self.application_id,
            avatar=avatar,
        )
        self.webhooks[webhook.id] = webhook
        return _Answer(200, webhook.payload(self.bot.payload()))
