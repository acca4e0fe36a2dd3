"""What is recorded: REST calls, schema failures, gateway events, messages and their versions, interactions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.wire.standin.constants import FLAG_EPHEMERAL, MESSAGE_DEFAULT, iso


@dataclass(frozen=True)
class RestCall:
    """One REST request as it arrived, and the status it got."""

    method: str
    path: str  # without /api/v10
    template: str | None  # the documented path template, None for an undocumented path
    query: dict[str, str]
    json: Any
    files: tuple[str, ...]  # uploaded file names
    status: int
    at: float  # time.monotonic() of arrival
    wall: float  # time.time() of arrival


@dataclass(frozen=True)
class SchemaFailure:
    """A body that does not follow Discord's schema: a request the bot sent, or an answer of ours."""

    method: str
    path: str
    template: str
    problems: tuple[str, ...]
    body: Any


@dataclass(frozen=True)
class GatewayEvent:
    """Something that happened on the gateway: connect, identify, resume, resumed, invalid_session, close."""

    kind: str
    at: float  # time.monotonic()
    detail: str = ""


@dataclass(frozen=True)
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    description: str | None = None

    def payload(self, base: str) -> dict[str, Any]:
        url = f"{base}/{self.id}/{self.filename}"
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": url,
            "proxy_url": url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            payload["description"] = self.description
        return payload


def visible_text(
    content: str, embeds: Iterable[dict[str, Any]], components: Iterable[dict[str, Any]], files: Iterable[str]
) -> str:
    """What a reader sees in a message, as one string: content, embeds, button labels, file names."""
    parts = [content]
    for embed in embeds:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        for embed_field in embed.get("fields") or []:
            parts += [embed_field.get("name", ""), embed_field.get("value", "")]
        parts.append((embed.get("footer") or {}).get("text", ""))
    for row in components:
        parts += [component.get("label") or "" for component in row.get("components", [])]
    parts += files
    return "\n".join(part for part in parts if part)


def numbered_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord stores them: each numbered (`id`, depth first), unicode emoji by name only."""
    counter = 0

    def number(component: dict[str, Any]) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        stored = {**component, "id": component.get("id") or counter}
        emoji = stored.get("emoji")
        if isinstance(emoji, dict):
            stored["emoji"] = {key: value for key, value in emoji.items() if value is not None}
        if "components" in stored:
            stored["components"] = [number(child) for child in stored["components"]]
        return stored

    return [number(component) for component in components]


@dataclass(frozen=True)
class MessageVersion:
    """What the message showed from `at` (time.monotonic()) on."""

    at: float
    content: str
    embeds: tuple[Any, ...]
    components: tuple[Any, ...]
    attachment_names: tuple[str, ...]

    def text(self) -> str:
        return visible_text(self.content, self.embeds, self.components, self.attachment_names)


@dataclass
class StoredMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: dict[str, Any]
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = MESSAGE_DEFAULT
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    mentions: list[dict[str, Any]] = field(default_factory=list)
    mention_roles: list[str] = field(default_factory=list)
    mention_everyone: bool = False
    created_at: float = field(default_factory=time.time)
    edited_at: float | None = None
    deleted: bool = False
    avatar_url: str | None = None  # the picture a webhook message was posted with (`avatar_url`)
    versions: list[MessageVersion] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def attachment_names(self) -> list[str]:
        return [attachment.filename for attachment in self.attachments]

    @property
    def edits(self) -> int:
        return max(0, len(self.versions) - 1)

    @property
    def embed(self) -> dict[str, Any] | None:
        return self.embeds[0] if self.embeds else None

    def text(self) -> str:
        """Everything a reader sees in the message now, as one string: content, embeds, buttons, files."""
        return visible_text(self.content, self.embeds, self.components, self.attachment_names)

    def snapshot(self) -> None:
        self.versions.append(
            MessageVersion(
                at=time.monotonic(),
                content=self.content,
                embeds=tuple(self.embeds),
                components=tuple(self.components),
                attachment_names=tuple(self.attachment_names),
            )
        )

    def payload(self, attachment_base: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author,
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at) if self.edited_at else None,
            "tts": False,
            "mention_everyone": self.mention_everyone,
            "mentions": self.mentions,
            "mention_roles": self.mention_roles,
            "attachments": [
                attachment.payload(f"{attachment_base}/{self.channel_id}") for attachment in self.attachments
            ],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if self.webhook_id is not None:
            payload["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            payload["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            payload["interaction_metadata"] = self.interaction_metadata
        if self.message_reference is not None:
            payload["message_reference"] = self.message_reference
        return payload


@dataclass
class ChannelWebhook:
    id: int
    token: str
    channel_id: int
    guild_id: int
    name: str
    creator_id: int
    application_id: int | None
    avatar: str | None = None  # the hash of its picture, as the CDN serves it under /avatars/<id>/<hash>.png

    def payload(self, creator: dict[str, Any], *, with_token: bool = True) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "name": self.name,
            "avatar": self.avatar,
            "application_id": str(self.application_id) if self.application_id else None,
            "user": creator,
        }
        if with_token:
            payload["token"] = self.token
            payload["url"] = f"https://discord.com/api/webhooks/{self.id}/{self.token}"
        return payload


@dataclass
class InteractionRecord:
    """One interaction Discord created, and how the bot answered it."""

    id: int
    token: str
    type: int
    user_id: int
    guild_id: int | None
    channel_id: int
    data: dict[str, Any]
    created_at: float  # time.monotonic()
    message_id: int | None = None  # the message a component sits on
    dispatched_at: float | None = None  # when INTERACTION_CREATE was written to the bot's socket
    callback_type: int | None = None
    callback_at: float | None = None  # when the callback request arrived
    callback_body: Any = None
    response_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None
    opened_by: int | None = None  # for a modal submit: the interaction answered with the modal
    refused_at: float | None = None  # when a callback arrived too late and was refused with 10062

    @property
    def answered(self) -> bool:
        return self.callback_type is not None

    @property
    def settled(self) -> bool:
        """Answered, or its answer came too late: either way the bot has done with answering it."""
        return self.answered or self.refused_at is not None

    @property
    def answer_seconds(self) -> float | None:
        """From INTERACTION_CREATE on the wire to the callback's arrival."""
        if self.dispatched_at is None or self.callback_at is None:
            return None
        return self.callback_at - self.dispatched_at


def avatar_hash(data_uri: str) -> str | None:
    """The hash Discord gives a picture sent as `data:image/...;base64,...` (a webhook's avatar); None if not one."""
    head, _, encoded = data_uri.partition(",")
    if not head.startswith("data:image/") or not head.endswith(";base64"):
        return None
    try:
        picture = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    return hashlib.md5(picture).hexdigest()
