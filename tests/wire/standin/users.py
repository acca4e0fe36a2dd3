"""`ActingAsUsers`: slash commands, buttons, modals, autocomplete, member messages, built as Discord builds them."""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.wire.standin.constants import (
    COMMAND_MESSAGE,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    INTERACTION_MODAL,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    OPTION_ATTACHMENT,
    OPTION_BOOLEAN,
    OPTION_CHANNEL,
    OPTION_INTEGER,
    OPTION_NUMBER,
    OPTION_ROLE,
    OPTION_STRING,
    OPTION_SUB_COMMAND,
    OPTION_USER,
)
from tests.wire.standin.messages import Messages
from tests.wire.standin.records import Attachment, InteractionRecord, StoredMessage
from tests.wire.standin.world import StandInChannel, StandInUser


class ActingAsUsers(Messages):
    """Tests drive the bot through these, as Discord's users would."""

    async def send_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: StandInUser,
        channel: StandInChannel,
    ) -> InteractionRecord:
        """A member runs a slash command (`"enhance"`, or `"persona show"` for a subcommand).

        The INTERACTION_CREATE is built as Discord builds it, from the synced command: its id,
        typed options nested under subcommands, the member with permissions, a fresh token.
        """
        top, *path = name.split()
        command = self.command(top, channel.guild_id)
        if command is None:
            raise LookupError(f"/{top} is not synced (yet)")
        declared = command.get("options") or []
        wrappers: list[dict[str, Any]] = []
        for part in path:
            sub = next((o for o in declared if o["name"] == part and o["type"] in (1, 2)), None)
            if sub is None:
                raise LookupError(f"/{name}: no subcommand {part!r}")
            wrappers.append({"name": part, "type": sub["type"]})
            declared = sub.get("options") or []
        built, resolved = self._options(name, declared, options or {}, channel)
        leaf: list[dict[str, Any]] = built
        for wrapper in reversed(wrappers):
            wrapper["options"] = leaf
            leaf = [wrapper]
        data: dict[str, Any] = {"id": command["id"], "name": top, "type": 1, "options": leaf}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return await self._interact(INTERACTION_COMMAND, data, user=user, channel=channel)

    async def send_message_command(
        self, name: str, target: StoredMessage, *, user: StandInUser, channel: StandInChannel
    ) -> InteractionRecord:
        """A member right-clicks a message and picks an app's command (Apps → `name`)."""
        command = self.command(name, channel.guild_id, kind=COMMAND_MESSAGE)
        if command is None:
            raise LookupError(f"message command {name!r} is not synced (yet)")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": COMMAND_MESSAGE,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): target.payload(self._attachment_base())}},
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._interact(INTERACTION_COMMAND, data, user=user, channel=channel)

    async def click_button(self, message: StoredMessage, custom_id: str, *, user: StandInUser) -> InteractionRecord:
        """A member presses a button on a message."""
        channel = self.channels[message.channel_id]
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(INTERACTION_COMPONENT, data, user=user, channel=channel, message=message)

    async def submit_modal(
        self, opened_by: InteractionRecord, values: dict[str, str], *, user: StandInUser | None = None
    ) -> InteractionRecord:
        """The member who got a modal fills its text inputs (by custom_id) and submits it."""
        if opened_by.modal is None:
            raise LookupError("that interaction was not answered with a modal")
        rows = []
        for row in opened_by.modal.get("components", []):
            inputs = [
                {"type": 4, "custom_id": component["custom_id"], "value": values.get(component["custom_id"], "")}
                for component in row.get("components", [])
            ]
            rows.append({"type": 1, "components": inputs})
        data = {"custom_id": opened_by.modal["custom_id"], "components": rows}
        channel = self.channels[opened_by.channel_id]
        member = user or self.users[opened_by.user_id]
        return await self._interact(INTERACTION_MODAL, data, user=member, channel=channel, opened_by=opened_by)

    async def autocomplete(
        self, name: str, options: dict[str, Any], focused: str, *, user: StandInUser, channel: StandInChannel
    ) -> InteractionRecord:
        """A member types in a slash-command option that autocompletes (`focused`)."""
        top = name.split()[0]
        command = self.command(top, channel.guild_id)
        if command is None:
            raise LookupError(f"/{top} is not synced (yet)")
        leaf = [{"name": key, "type": OPTION_STRING, "value": value} for key, value in options.items()]
        for option in leaf:
            if option["name"] == focused:
                option["focused"] = True
        for part in reversed(name.split()[1:]):
            leaf = [{"name": part, "type": OPTION_SUB_COMMAND, "options": leaf}]
        data = {"id": command["id"], "name": top, "type": 1, "options": leaf}
        return await self._interact(INTERACTION_AUTOCOMPLETE, data, user=user, channel=channel)

    async def send_member_message(
        self,
        content: str,
        *,
        user: StandInUser,
        channel: StandInChannel,
        reply_to: StoredMessage | None = None,
    ) -> StoredMessage:
        """A member posts in a channel; the bot gets MESSAGE_CREATE."""
        guild = self.guilds[channel.guild_id]
        message = StoredMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=user.payload(),
            content=content,
            type=MESSAGE_REPLY if reply_to else MESSAGE_DEFAULT,
        )
        if reply_to is not None:
            message.message_reference = {
                "type": 0,
                "message_id": str(reply_to.id),
                "channel_id": str(reply_to.channel_id),
                "guild_id": str(guild.id),
            }
        self._set_mentions(message, None)
        self._store(message)
        await self._dispatch_message("MESSAGE_CREATE", message, referenced=reply_to)
        return message

    def _options(
        self, name: str, declared: list[dict[str, Any]], given: dict[str, Any], channel: StandInChannel
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        by_name = {option["name"]: option for option in declared}
        for option in declared:
            if option.get("required") and option["name"] not in given:
                raise ValueError(f"/{name}: the option {option['name']!r} is required")
        built = []
        resolved: dict[str, dict[str, Any]] = {}
        guild = self.guilds[channel.guild_id]
        for key, value in given.items():
            option = by_name.get(key)
            if option is None:
                raise ValueError(f"/{name} has no option {key!r}")
            kind = option["type"]
            if kind in (OPTION_USER, OPTION_CHANNEL, OPTION_ROLE):
                target = value if isinstance(value, int) else value.id
                wire: Any = str(target)
                if kind == OPTION_USER:
                    user = self.users[target]
                    resolved.setdefault("users", {})[wire] = user.payload()
                    member = guild.member_payload(user, with_user=False)
                    member["permissions"] = str(guild.permissions_of(target))
                    resolved.setdefault("members", {})[wire] = member
                elif kind == OPTION_CHANNEL:
                    target_channel = self.channels[target]
                    resolved.setdefault("channels", {})[wire] = {
                        **target_channel.payload(),
                        "permissions": str(guild.permissions_of(self.bot.id)),
                    }
                else:
                    resolved.setdefault("roles", {})[wire] = guild.roles[target].payload()
            elif kind == OPTION_ATTACHMENT:  # (file name, bytes, content type): uploaded, then resolved
                filename, data, content_type = value
                upload = Attachment(self.ids.next(), filename, data, content_type)
                self.uploads[upload.id] = upload
                wire = str(upload.id)
                base = f"{self._attachment_base()}/{channel.id}"
                resolved.setdefault("attachments", {})[wire] = upload.payload(base)
            elif kind == OPTION_INTEGER:
                wire = int(value)
            elif kind == OPTION_NUMBER:
                wire = float(value)
            elif kind == OPTION_BOOLEAN:
                wire = bool(value)
            else:
                wire = str(value)
                if "choices" in option and wire not in [choice["value"] for choice in option["choices"]]:
                    raise ValueError(f"/{name}: {wire!r} is not one of the choices of {key!r}")
            built.append({"name": key, "type": kind, "value": wire})
        return built, resolved

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: StandInUser,
        channel: StandInChannel,
        message: StoredMessage | None = None,
        opened_by: InteractionRecord | None = None,
    ) -> InteractionRecord:
        guild = self.guilds[channel.guild_id]
        if user.id not in guild.members:
            raise ValueError(f"{user.name} is not a member of {guild.name}")
        record = InteractionRecord(
            id=self.ids.next(),
            token="aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96),
            type=kind,
            user_id=user.id,
            guild_id=guild.id,
            channel_id=channel.id,
            data=data,
            created_at=time.monotonic(),
            message_id=message.id if message else None,
            opened_by=opened_by.id if opened_by else None,
        )
        self.interactions[record.id] = record
        member = guild.member_payload(user)
        member["permissions"] = str(guild.permissions_of(user.id))
        payload: dict[str, Any] = {
            "id": str(record.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "guild_id": str(guild.id),
            "channel": {**channel.payload(), "permissions": str(guild.permissions_of(user.id))},
            "channel_id": str(channel.id),
            "member": member,
            "token": record.token,
            "version": 1,
            "app_permissions": str(guild.permissions_of(self.bot.id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message.payload(self._attachment_base())

        def sent() -> None:
            record.dispatched_at = time.monotonic()

        await self._dispatch("INTERACTION_CREATE", payload, on_sent=sent)
        return record
