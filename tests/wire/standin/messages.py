"""`Messages`: stored messages made, edited and deleted as Discord would, with their mentions and events."""

from __future__ import annotations

import time
from typing import Any

from tests.wire.standin.constants import FLAG_LOADING, MENTION, MESSAGE_DEFAULT, ROLE_MENTION
from tests.wire.standin.gateway import Gateway
from tests.wire.standin.plumbing import _Answer, _Request
from tests.wire.standin.records import Attachment, StoredMessage, numbered_components


class Messages(Gateway):
    """What REST routes and users share for messages: make, store, edit (with a body), delete, mention."""

    def _new_message(
        self,
        channel_id: int,
        *,
        author: dict[str, Any],
        type: int = MESSAGE_DEFAULT,
        webhook_id: int | None = None,
        application_id: int | None = None,
    ) -> StoredMessage:
        return StoredMessage(
            id=self.ids.next(),
            channel_id=channel_id,
            guild_id=self.channels[channel_id].guild_id if channel_id in self.channels else None,
            author=author,
            type=type,
            webhook_id=webhook_id,
            application_id=application_id,
        )

    def _store(self, message: StoredMessage) -> None:
        message.snapshot()
        self.messages[message.id] = message

    async def _edit(self, message: StoredMessage, request: _Request) -> _Answer:
        self._apply_body(message, request.json or {}, request.files, creating=False)
        message.flags &= ~FLAG_LOADING
        message.edited_at = time.time()
        message.snapshot()
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return _Answer(200, message.payload(self._attachment_base()))

    def _apply_body(
        self, message: StoredMessage, body: dict[str, Any], files: list[tuple[str, str, bytes, str]], *, creating: bool
    ) -> None:
        """Apply a create or edit body: a key left out keeps what the message had."""
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = [{"type": "rich", **embed} for embed in body["embeds"] or []]
        if "components" in body:
            message.components = numbered_components(body["components"] or [])
        uploads = {
            int(name[len("files[") : -1]): (filename, data, content_type)
            for name, filename, data, content_type in files
            if name.startswith("files[") and name.endswith("]") and name[len("files[") : -1].isdigit()
        }
        if body.get("attachments") is not None:
            kept = {attachment.id: attachment for attachment in message.attachments}
            attachments = []
            for entry in body["attachments"]:
                entry_id = int(entry["id"])
                if entry_id in kept and entry_id not in uploads:
                    attachments.append(kept[entry_id])
                elif entry_id in uploads:
                    filename, data, content_type = uploads.pop(entry_id)
                    attachments.append(
                        Attachment(
                            self.ids.next(),
                            entry.get("filename") or filename,
                            data,
                            content_type,
                            entry.get("description"),
                        )
                    )
            message.attachments = attachments
        message.attachments += [
            Attachment(self.ids.next(), filename, data, content_type)
            for _, (filename, data, content_type) in sorted(uploads.items())
        ]
        if "allowed_mentions" in body or creating:
            message.allowed_mentions = body.get("allowed_mentions")
        if "content" in body or creating:
            self._set_mentions(message, message.allowed_mentions)

    def _set_mentions(self, message: StoredMessage, allowed: dict[str, Any] | None) -> None:
        """Who a message pings: what its content mentions, as far as `allowed_mentions` lets it."""
        parse = set(allowed.get("parse") or []) if allowed is not None else {"users", "roles", "everyone"}
        listed_users = {int(user) for user in (allowed or {}).get("users") or []}
        listed_roles = {int(role) for role in (allowed or {}).get("roles") or []}
        user_ids = [int(found) for found in MENTION.findall(message.content)]
        role_ids = [int(found) for found in ROLE_MENTION.findall(message.content)]
        guild = self.guilds.get(message.guild_id or 0)
        mentions = []
        for user_id in dict.fromkeys(user_ids):
            if user_id in self.users and ("users" in parse or user_id in listed_users):
                payload = self.users[user_id].payload()
                if guild is not None and user_id in guild.members:
                    payload["member"] = guild.member_payload(self.users[user_id], with_user=False)
                mentions.append(payload)
        message.mentions = mentions
        message.mention_roles = [
            str(role_id) for role_id in dict.fromkeys(role_ids) if "roles" in parse or role_id in listed_roles
        ]
        pings_all = "@everyone" in message.content or "@here" in message.content
        message.mention_everyone = "everyone" in parse and pings_all

    async def delete_message(self, message: StoredMessage) -> None:
        """A moderator deletes a message."""
        message.deleted = True
        await self._dispatch_delete(message)
        await self._notify()
