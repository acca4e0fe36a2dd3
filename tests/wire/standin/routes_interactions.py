"""`InteractionRoutes`: REST an interaction or webhook token opens: the callback, `/webhooks/...` and its messages."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from tests.wire.standin.constants import (
    ATTACHMENTS_PATH,
    CALLBACK_AUTOCOMPLETE,
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_MODAL,
    CALLBACK_UPDATE_MESSAGE,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FORBIDDEN_WEBHOOK_NAMES,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    INTERACTION_MODAL,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_DEFAULT,
)
from tests.wire.standin.messages import Messages
from tests.wire.standin.plumbing import Handler, _Answer, _error, _form_error, _Request, _truthy
from tests.wire.standin.records import ChannelWebhook, InteractionRecord, StoredMessage, avatar_hash
from tests.wire.standin.world import StandInUser

log = logging.getLogger(__name__)


class InteractionRoutes(Messages):
    """Answering an interaction, and everything done with an interaction's token or a channel webhook's."""

    def _interaction_routes(self) -> dict[tuple[str, str], Handler]:
        webhook = "/webhooks/{webhook_id}/{webhook_token}"
        return {
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback"): self._callback,
            ("GET", webhook + "/messages/@original"): self._get_webhook_message,
            ("PATCH", webhook + "/messages/@original"): self._edit_webhook_message,
            ("DELETE", webhook + "/messages/@original"): self._delete_webhook_message,
            ("GET", webhook + "/messages/{message_id}"): self._get_webhook_message,
            ("PATCH", webhook + "/messages/{message_id}"): self._edit_webhook_message,
            ("DELETE", webhook + "/messages/{message_id}"): self._delete_webhook_message,
            ("POST", webhook): self._execute_webhook,
            ("GET", webhook): self._get_webhook,
            ("PATCH", webhook): self._edit_webhook,
            ("DELETE", webhook): self._delete_webhook,
            ("GET", "/webhooks/{webhook_id}"): self._get_webhook,
            ("PATCH", "/webhooks/{webhook_id}"): self._edit_webhook,
            ("DELETE", "/webhooks/{webhook_id}"): self._delete_webhook,
        }

    # REST: interactions ---------------------------------------------------------------------

    async def _callback(self, request: _Request) -> _Answer:
        record = self.interactions.get(int(request.params["interaction_id"]))
        if record is None or record.token != request.params["interaction_token"]:
            return _error(404, 10062, "Unknown interaction")
        arrived = request.arrived
        if arrived - record.created_at > self.interaction_answer_window:
            if record.refused_at is None:
                record.refused_at = arrived
                # Counted (`late_callbacks_refused`) and printed by the benchmarks, so not a warning each.
                log.info(
                    "Refused the callback of interaction %s: %.2f s after it was created",
                    record.id,
                    arrived - record.created_at,
                )
            return _error(404, 10062, "Unknown interaction")
        if record.answered:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body = request.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        allowed = {
            INTERACTION_COMMAND: (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_MODAL),
            INTERACTION_COMPONENT: (4, 5, 6, 7, 9),
            INTERACTION_MODAL: (4, 5, 6, 7),
            INTERACTION_AUTOCOMPLETE: (CALLBACK_AUTOCOMPLETE,),
        }[record.type]
        if kind not in allowed:
            return _form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type")
        record.callback_type, record.callback_at, record.callback_body = kind, arrived, body
        message: StoredMessage | None = None
        if kind in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            message = self._new_message(
                record.channel_id,
                author=self.bot.payload(),
                type=MESSAGE_CHAT_INPUT_COMMAND if record.type == INTERACTION_COMMAND else MESSAGE_DEFAULT,
                webhook_id=self.application_id,
                application_id=self.application_id,
            )
            message.interaction_id = record.id
            message.interaction_metadata = self._interaction_metadata(record)
            message.flags = (data.get("flags") or 0) & FLAG_EPHEMERAL
            if kind == CALLBACK_DEFERRED_MESSAGE:
                message.flags |= FLAG_LOADING
            else:
                self._apply_body(message, data, request.files, creating=True)
            self._store(message)
            record.response_message_id = message.id
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif kind in (CALLBACK_UPDATE_MESSAGE, CALLBACK_DEFERRED_UPDATE) and record.message_id is not None:
            message = self.messages[record.message_id]
            record.response_message_id = message.id
            if kind == CALLBACK_UPDATE_MESSAGE:
                self._apply_body(message, data, request.files, creating=False)
                message.edited_at = time.time()
                message.snapshot()
                await self._dispatch_message("MESSAGE_UPDATE", message)
        elif kind == CALLBACK_MODAL:
            record.modal = data
        elif kind == CALLBACK_AUTOCOMPLETE:
            record.choices = data.get("choices") or []
        if not _truthy(request.query.get("with_response")):
            return _Answer(204)
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.type}
        if record.response_message_id is not None:
            interaction["response_message_id"] = str(record.response_message_id)
            interaction["response_message_loading"] = kind == CALLBACK_DEFERRED_MESSAGE
            interaction["response_message_ephemeral"] = bool(message and message.ephemeral)
        answer: dict[str, Any] = {"interaction": interaction}
        # Discord's schema has a resource for a message made or updated, none for a "thinking…" defer.
        if message is not None and kind in (CALLBACK_MESSAGE, CALLBACK_UPDATE_MESSAGE):
            answer["resource"] = {"type": kind, "message": message.payload(self._attachment_base())}
        return _Answer(200, answer)

    def _interaction_metadata(self, record: InteractionRecord) -> dict[str, Any]:
        """What a response message says about the interaction it answers (and what led to it)."""
        metadata: dict[str, Any] = {
            "id": str(record.id),
            "type": record.type,
            "user": self.users[record.user_id].payload(),
            "authorizing_integration_owners": {"0": str(record.guild_id)},
        }
        if record.response_message_id is not None:
            metadata["original_response_message_id"] = str(record.response_message_id)
        if record.type == INTERACTION_COMPONENT and record.message_id is not None:
            metadata["interacted_message_id"] = str(record.message_id)
        if record.type == INTERACTION_MODAL and record.opened_by is not None:
            metadata["triggering_interaction_metadata"] = self._interaction_metadata(
                self.interactions[record.opened_by]
            )
        return metadata

    # REST: webhooks, for interactions and for channels -------------------------------------

    def _token_owner(self, request: _Request) -> InteractionRecord | ChannelWebhook | _Answer:
        webhook_id = int(request.params["webhook_id"])
        token = request.params.get("webhook_token")
        if token is None:  # /webhooks/{id}: the bot's own access
            found = self.webhooks.get(webhook_id)
            return found if found is not None else _error(404, 10015, "Unknown Webhook")
        if webhook_id == self.application_id:
            for record in self.interactions.values():
                if record.token == token:
                    if time.monotonic() - record.created_at > self.interaction_token_lifetime:
                        return _error(401, 50027, "Invalid Webhook Token")
                    return record
            return _error(401, 50027, "Invalid Webhook Token")
        found = self.webhooks.get(webhook_id)
        if found is None:
            return _error(404, 10015, "Unknown Webhook")
        if found.token != token:
            return _error(401, 50027, "Invalid Webhook Token")
        return found

    def _webhook_message(self, request: _Request) -> StoredMessage | _Answer:
        owner = self._token_owner(request)
        if isinstance(owner, _Answer):
            return owner
        if isinstance(owner, InteractionRecord):
            if request.path.endswith("/@original"):
                message_id = owner.response_message_id
            else:
                message_id = int(request.params["message_id"])
                mine = {owner.response_message_id, *owner.followup_ids}
                if message_id not in mine:
                    return _error(404, 10008, "Unknown Message")
        else:
            message_id = int(request.params.get("message_id") or 0)
        message = self.messages.get(message_id or 0)
        if message is None or message.deleted:
            return _error(404, 10008, "Unknown Message")
        if isinstance(owner, ChannelWebhook) and message.webhook_id != owner.id:
            return _error(404, 10008, "Unknown Message")
        return message

    async def _get_webhook_message(self, request: _Request) -> _Answer:
        message = self._webhook_message(request)
        if isinstance(message, _Answer):
            return message
        return _Answer(200, message.payload(self._attachment_base()))

    async def _edit_webhook_message(self, request: _Request) -> _Answer:
        message = self._webhook_message(request)
        if isinstance(message, _Answer):
            return message
        owner = self._token_owner(request)
        if isinstance(owner, ChannelWebhook) and not _components_honoured(owner, request):
            request = replace(request, json=_without_components(request.json or {}))
        return await self._edit(message, request)

    async def _delete_webhook_message(self, request: _Request) -> _Answer:
        message = self._webhook_message(request)
        if isinstance(message, _Answer):
            return message
        await self.delete_message(message)
        return _Answer(204)

    async def _execute_webhook(self, request: _Request) -> _Answer:
        owner = self._token_owner(request)
        if isinstance(owner, _Answer):
            return owner
        body = request.json or {}
        if isinstance(owner, InteractionRecord):
            if not owner.answered:
                return _error(404, 10015, "Unknown Webhook")
            message = self._new_message(
                owner.channel_id,
                author=self.bot.payload(),
                webhook_id=self.application_id,
                application_id=self.application_id,
            )
            message.interaction_id = owner.id
            message.flags = (body.get("flags") or 0) & FLAG_EPHEMERAL
            self._apply_body(message, body, request.files, creating=True)
            self._store(message)
            owner.followup_ids.append(message.id)
            await self._dispatch_message("MESSAGE_CREATE", message)
            return _Answer(200, message.payload(self._attachment_base()))
        channel_id = owner.channel_id
        if request.query.get("thread_id"):
            thread = self.channels.get(int(request.query["thread_id"]))
            if thread is None or thread.parent_id != owner.channel_id:
                return _error(400, 10003, "Unknown Channel")
            channel_id = thread.id
        avatar_url = body.get("avatar_url")
        if avatar_url and ATTACHMENTS_PATH + "/" in avatar_url:
            # Discord's attachment links are signed and expire; Discord does not take them as avatars.
            return _form_error("avatar_url", "AVATAR_URL_INVALID", "Attachment links cannot be used as avatars")
        username = body.get("username") or owner.name
        if not 1 <= len(username) <= 80 or any(word in username.lower() for word in FORBIDDEN_WEBHOOK_NAMES):
            return _form_error("username", "USERNAME_INVALID", "Username cannot contain that name")
        # A webhook's messages are authored by a pseudo-user: the webhook's id, the name it posted under.
        author = {**StandInUser(owner.id, username, bot=True).payload(), "discriminator": "0000"}
        message = self._new_message(channel_id, author=author, webhook_id=owner.id, application_id=owner.application_id)
        if not _components_honoured(owner, request):
            body = _without_components(body)
        message.avatar_url = avatar_url
        self._apply_body(message, body, request.files, creating=True)
        self._store(message)
        await self._dispatch_message("MESSAGE_CREATE", message)
        if not _truthy(request.query.get("wait")):
            return _Answer(204)
        return _Answer(200, message.payload(self._attachment_base()))

    def _channel_webhook(self, request: _Request) -> ChannelWebhook | _Answer:
        owner = self._token_owner(request)
        if isinstance(owner, InteractionRecord):
            return _error(404, 10015, "Unknown Webhook")
        return owner

    async def _get_webhook(self, request: _Request) -> _Answer:
        webhook = self._channel_webhook(request)
        if isinstance(webhook, _Answer):
            return webhook
        with_token = "webhook_token" not in request.params
        return _Answer(200, webhook.payload(self.users[webhook.creator_id].payload(), with_token=with_token))

    async def _edit_webhook(self, request: _Request) -> _Answer:
        webhook = self._channel_webhook(request)
        if isinstance(webhook, _Answer):
            return webhook
        name = (request.json or {}).get("name")
        if name is not None:
            webhook.name = name
        if "avatar" in (request.json or {}):
            picture = (request.json or {})["avatar"]
            webhook.avatar = avatar_hash(picture) if picture else None
        return _Answer(200, webhook.payload(self.users[webhook.creator_id].payload()))

    async def _delete_webhook(self, request: _Request) -> _Answer:
        webhook = self._channel_webhook(request)
        if isinstance(webhook, _Answer):
            return webhook
        del self.webhooks[webhook.id]
        return _Answer(204)

    async def delete_webhook(self, webhook: ChannelWebhook) -> None:
        """A moderator deletes a channel webhook."""
        self.webhooks.pop(webhook.id, None)
        await self._notify()


def _components_honoured(webhook: ChannelWebhook, request: _Request) -> bool:
    """Discord ignores a channel webhook's `components` unless `with_components` is set, and then only
    an application-owned webhook (one a bot created) may carry interactive ones such as buttons."""
    return _truthy(request.query.get("with_components")) and webhook.application_id is not None


def _without_components(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "components"}
