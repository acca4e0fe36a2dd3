"""A local stand-in for Discord, good enough for the real discord.py client over real sockets.

One aiohttp application serves:

- REST under `/api/v10`: login (`/users/@me`, `/oauth2/applications/@me`), `/gateway/bot`,
  command sync, interaction callbacks, original-response and follow-up edits through the
  interaction token, channel messages, typing, and channel webhooks. Every call is recorded
  (method, path, documented template, JSON body, uploaded file names, status, arrival time)
  and every JSON body is checked against Discord's own OpenAPI description
  (`tests/wire/discord_api/openapi.json`); a body that fails is recorded in `schema_failures`
  and, like Discord does, refused with 400 (50035). The stand-in's own JSON answers are
  checked against the response schemas too (`answer_failures`), so the fake keeps to the API.
- A websocket gateway at `/gateway` (and `/gateway/resume`, the `resume_gateway_url`): HELLO,
  heartbeats acked, IDENTIFY answered with READY and a GUILD_CREATE per guild, RESUME replaying
  what the bot missed and then RESUMED, INVALID_SESSION for a session it does not know.
- Attachments at `/attachments/...`, as Discord's CDN serves them.

Tests drive it as Discord's users would: `send_command()` builds an INTERACTION_CREATE for a
synced slash command the way Discord does, `click_button()`, `submit_modal()` and
`send_member_message()` likewise; `drop_gateway()` cuts the connection; `rate_limit()` answers
a route with Discord's 429 (headers, body and the `Via` header discord.py looks for) a number
of times; `slow()` adds latency. What a user would see is in `messages` (content, embeds,
components, attachment names, every version with its time).

It never imports the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web
from multidict import MultiDictProxy

from tests.fakes.loopback import HeldRequests, serve_fake
from tests.wire.openapi import OpenAPI, Operation, shared_openapi

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/gateway"
RESUME_GATEWAY_PATH = "/gateway/resume"
ATTACHMENTS_PATH = "/attachments"
DISCORD_EPOCH_MS = 1_420_070_400_000

DEFAULT_TOKEN = "wire-bot-token"
DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250
# An interaction must be answered within 3 s; its token then works for 15 minutes.
INTERACTION_ANSWER_WINDOW = 3.0
INTERACTION_TOKEN_LIFETIME = 15 * 60
# Events kept per session for a RESUME to replay.
RESUME_BACKLOG = 1000
WEBHOOKS_PER_CHANNEL = 15
# What success answers announce in X-RateLimit-* (generous: only scripted 429s limit the bot).
BUCKET_LIMIT = 50

# Gateway opcodes.
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE = 0, 1, 2, 3
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION = 6, 7, 8, 9
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11

# Intents and application flags.
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT = 1 << 18

# Permissions.
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_WEBHOOKS = 1 << 29
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
) | SEND_MESSAGES_IN_THREADS
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_WEBHOOKS

# Message types and flags.
MESSAGE_DEFAULT, MESSAGE_REPLY, MESSAGE_CHAT_INPUT_COMMAND = 0, 19, 20
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Interaction types and callback types.
INTERACTION_COMMAND, INTERACTION_COMPONENT, INTERACTION_AUTOCOMPLETE, INTERACTION_MODAL = 2, 3, 4, 5
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE = 4, 5, 6
CALLBACK_UPDATE_MESSAGE, CALLBACK_AUTOCOMPLETE, CALLBACK_MODAL = 7, 8, 9

# Channel types.
CHANNEL_TEXT, CHANNEL_PUBLIC_THREAD = 0, 11
THREAD_TYPES = (10, 11, 12)

# Slash-command option types.
OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP = 1, 2
OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_USER, OPTION_CHANNEL, OPTION_ROLE = 3, 4, 5, 6, 7, 8
OPTION_NUMBER = 10

MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
FORBIDDEN_WEBHOOK_NAMES = ("discord", "clyde")


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")


class Snowflakes:
    """Discord ids: milliseconds since Discord's epoch, then a counter; each one larger than the last."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


# --- The world: users, guilds, channels ---------------------------------------------------------


@dataclass
class StandInUser:
    id: int
    name: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": None if self.bot else self.name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }


@dataclass
class StandInRole:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class StandInChannel:
    id: int
    guild_id: int
    name: str
    type: int = CHANNEL_TEXT
    parent_id: int | None = None
    position: int = 0
    owner_id: int | None = None  # a thread's creator

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "last_message_id": None,
            "flags": 0,
            "rate_limit_per_user": 0,
            "parent_id": str(self.parent_id) if self.parent_id else None,
        }
        if self.is_thread:
            payload.update(
                owner_id=str(self.owner_id),
                message_count=0,
                member_count=1,
                total_message_sent=0,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": iso(time.time()),
                    "locked": False,
                    "create_timestamp": iso(time.time()),
                },
            )
        else:
            payload.update(position=self.position, permission_overwrites=[], topic=None, nsfw=False)
        return payload


@dataclass
class StandInGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, StandInRole] = field(default_factory=dict)
    channels: dict[int, StandInChannel] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)  # user id -> role ids (not @everyone)
    joined_at: float = field(default_factory=time.time)

    def permissions_of(self, user_id: int) -> int:
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.roles[self.id].permissions
        for role_id in self.members.get(user_id, []):
            value |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def member_payload(self, user: StandInUser, *, with_user: bool = True) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "roles": [str(role_id) for role_id in self.members.get(user.id, [])],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = user.payload()
        return payload


# --- What is recorded ---------------------------------------------------------------------------


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

    def payload(self, creator: dict[str, Any], *, with_token: bool = True) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "name": self.name,
            "avatar": None,
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

    @property
    def answered(self) -> bool:
        return self.callback_type is not None

    @property
    def answer_seconds(self) -> float | None:
        """From INTERACTION_CREATE on the wire to the callback's arrival."""
        if self.dispatched_at is None or self.callback_at is None:
            return None
        return self.callback_at - self.dispatched_at


@dataclass
class _Session:
    id: str
    intents: int
    seq: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    connection: _Connection | None = None
    on_sent: dict[int, Callable[[], None]] = field(default_factory=dict)
    resumable: bool = True


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.path = request.path
        self.session: _Session | None = None
        self.closed = asyncio.Event()
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> bool:
        async with self._lock:
            if self.ws.closed or self.closed.is_set():
                return False
            try:
                await self.ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError):
                return False
            return True


@dataclass
class _RateLimit:
    method: str
    template: str
    remaining: int
    retry_after: float
    is_global: bool


@dataclass
class _Latency:
    seconds: float
    method: str | None
    template: str | None


@dataclass
class _Request:
    """A REST request, parsed: what a route handler gets."""

    method: str
    path: str
    params: dict[str, str]
    query: MultiDictProxy[str]
    json: Any
    files: list[tuple[str, str, bytes, str]]  # (field name, file name, data, content type)
    operation: Operation
    arrived: float  # time.monotonic() when the request came in, before any latency the test added


@dataclass
class _Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> _Answer:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return _Answer(status, body)


def _form_error(key: str, code: str, message: str) -> _Answer:
    return _error(400, 50035, "Invalid Form Body", {key: {"_errors": [{"code": code, "message": message}]}})


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


Handler = Callable[[_Request], Awaitable[_Answer]]


# --- The stand-in -------------------------------------------------------------------------------


class DiscordStandIn:
    """All state of one local Discord; `app` serves it. See the module docstring."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_name: str = "Persona Bot",
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        message_content_enabled: bool = True,
        reject_invalid_bodies: bool = True,
        check_answers: bool = True,
        defer_checks: bool = False,
        openapi: OpenAPI | None = None,
    ) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.message_content_enabled = message_content_enabled
        # A body against the schema is always recorded; refused with 400 (50035) as Discord would, unless told not to.
        self.reject_invalid_bodies = reject_invalid_bodies
        # Checking our own answers against the response schemas costs CPU a benchmark may not want to pay.
        self.check_answers = check_answers
        # A benchmark timing the bot defers the checks (about 2 ms of CPU a body) until
        # `run_deferred_checks()`: every body is still checked, but not while the clock runs.
        # Deferred, an invalid body is recorded but not refused.
        self.defer_checks = defer_checks
        self._unchecked: list[tuple[str, str, Operation, Any, Any, int]] = []  # ..., request, answer, status
        self.openapi = openapi or shared_openapi()
        self.base_url: str | None = None  # set by `serve()`
        self.ids = Snowflakes()
        self.bot = StandInUser(self.ids.next(), bot_name, bot=True)
        self.owner = StandInUser(self.ids.next(), "app-owner")
        self.application_id = self.bot.id  # as for every application made since 2019
        self.users: dict[int, StandInUser] = {self.bot.id: self.bot, self.owner.id: self.owner}
        self.guilds: dict[int, StandInGuild] = {}
        self.channels: dict[int, StandInChannel] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.webhooks: dict[int, ChannelWebhook] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.command_syncs: list[tuple[int | None, float]] = []  # (guild id or None, time.monotonic())
        self.calls: list[RestCall] = []
        self.schema_failures: list[SchemaFailure] = []
        self.answer_failures: list[SchemaFailure] = []
        self.unhandled: list[RestCall] = []
        self.gateway_events: list[GatewayEvent] = []
        self.heartbeats = 0
        self.typing: list[tuple[int, float]] = []  # (channel id, time.monotonic())
        self.interaction_answer_window = INTERACTION_ANSWER_WINDOW
        self.interaction_token_lifetime = INTERACTION_TOKEN_LIFETIME
        self._session: _Session | None = None
        self._connections: set[_Connection] = set()
        self._rate_limits: list[_RateLimit] = []
        self._latencies: list[_Latency] = []
        self._held = HeldRequests()  # requests slowed by `slow()`
        self._changed = asyncio.Condition()
        self._handlers = self._build_handlers()
        self.app = self._build_app()

    # The world ------------------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> StandInUser:
        user = StandInUser(self.ids.next(), name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str = "Wire Test Server", *, owner: StandInUser | None = None) -> StandInGuild:
        """A guild the bot is in, with @everyone, a Moderators role (Manage Server) and the bot's role."""
        guild_id = self.ids.next()
        owner = owner or self.add_user("server-owner")
        guild = StandInGuild(guild_id, name, owner.id)
        guild.roles[guild_id] = StandInRole(guild_id, "@everyone", EVERYONE_PERMISSIONS)
        moderators = StandInRole(self.ids.next(), "Moderators", EVERYONE_PERMISSIONS | MANAGE_GUILD, position=1)
        bot_role = StandInRole(self.ids.next(), self.bot.name, BOT_PERMISSIONS, position=2, managed=True)
        guild.roles[moderators.id] = moderators
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = []
        guild.members[self.bot.id] = [bot_role.id]
        self.guilds[guild_id] = guild
        return guild

    def add_channel(
        self, guild: StandInGuild, name: str = "general", *, parent: StandInChannel | None = None
    ) -> StandInChannel:
        """A text channel, or with `parent` a public thread in it (started by the guild's owner)."""
        channel = StandInChannel(
            self.ids.next(),
            guild.id,
            name,
            type=CHANNEL_PUBLIC_THREAD if parent else CHANNEL_TEXT,
            parent_id=parent.id if parent else None,
            position=len(guild.channels),
            owner_id=guild.owner_id if parent else None,
        )
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def add_member(self, guild: StandInGuild, name: str, *, moderator: bool = False) -> StandInUser:
        user = self.add_user(name)
        roles = [role.id for role in guild.roles.values() if role.name == "Moderators"] if moderator else []
        guild.members[user.id] = roles
        return user

    # Serving --------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        assert self.base_url, "the stand-in is not served"
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        assert self.base_url, "the stand-in is not served"
        return "ws" + self.base_url.removeprefix("http") + GATEWAY_PATH

    @property
    def resume_gateway_url(self) -> str:
        return self.gateway_url.removesuffix(GATEWAY_PATH) + RESUME_GATEWAY_PATH

    def release_hangs(self) -> None:
        """Let every request held by `slow()` answer now (called when serving stops)."""
        self._held.release_all()

    # Faults ---------------------------------------------------------------------------------

    def rate_limit(
        self, method: str, template: str, *, times: int = 1, retry_after: float = 0.25, is_global: bool = False
    ) -> None:
        """Answer the next `times` requests of a documented route with Discord's 429."""
        if not self.openapi.template_exists(method, template):
            raise ValueError(f"{method} {template} is not a documented Discord route")
        self._rate_limits.append(_RateLimit(method.upper(), template, times, retry_after, is_global))

    def slow(self, seconds: float, *, method: str | None = None, template: str | None = None) -> None:
        """Hold every REST request (or only one route's) this long before answering; 0 undoes it."""
        self._latencies = [
            rule for rule in self._latencies if (rule.method, rule.template) != (method and method.upper(), template)
        ]
        if seconds > 0:
            self._latencies.append(_Latency(seconds, method and method.upper(), template))

    async def drop_gateway(self, *, code: int | None = None, resumable: bool = True) -> None:
        """Cut the bot's gateway connection: abort the TCP connection, or close it with `code`.

        The session stays resumable (events meanwhile are kept and replayed on RESUME) unless
        `resumable=False`: then a RESUME gets INVALID_SESSION and the bot must IDENTIFY anew.
        """
        session = self._session
        connection = session.connection if session else None
        if session is None or connection is None:
            raise RuntimeError("the bot is not connected to the gateway")
        session.resumable = resumable
        self._note("drop", (f"code {code}" if code is not None else "abort") + ("" if resumable else ", not resumable"))
        if code is None:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
        else:
            await connection.ws.close(code=code, message=b"dropped by the test")
        await connection.closed.wait()

    async def reconnect_request(self) -> None:
        """Ask the bot to reconnect and resume (opcode 7), as Discord does before a restart."""
        connection = self._session.connection if self._session else None
        if connection is None:
            raise RuntimeError("the bot is not connected to the gateway")
        await connection.send({"op": OP_RECONNECT, "d": None})

    # Inspection -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._session and self._session.connection and not self._session.connection.closed.is_set())

    @property
    def session_id(self) -> str | None:
        return self._session.id if self._session else None

    def gateway_count(self, kind: str) -> int:
        return sum(1 for event in self.gateway_events if event.kind == kind)

    def calls_to(self, method: str, template: str) -> list[RestCall]:
        return [call for call in self.calls if call.method == method.upper() and call.template == template]

    def channel_messages(self, channel: StandInChannel | int, *, ephemeral: bool = False) -> list[StoredMessage]:
        """Messages shown in a channel, oldest first (ephemeral ones only if asked for)."""
        channel_id = channel if isinstance(channel, int) else channel.id
        return [
            message
            for message in self.messages.values()
            if message.channel_id == channel_id and not message.deleted and (ephemeral or not message.ephemeral)
        ]

    def response_message(self, interaction: InteractionRecord) -> StoredMessage | None:
        if interaction.response_message_id is None:
            return None
        return self.messages.get(interaction.response_message_id)

    def command(self, name: str, guild_id: int | None = None) -> dict[str, Any] | None:
        """A synced top-level command: the guild's own first, then the global one."""
        for command in [*self.guild_commands.get(guild_id or 0, []), *self.global_commands]:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        return None

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> None:
        """Return once `predicate()` holds (checked on every change the stand-in sees); TimeoutError if not."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _note(self, kind: str, detail: str = "") -> None:
        self.gateway_events.append(GatewayEvent(kind, time.monotonic(), detail))
        log.info("gateway: %s %s", kind, detail)

    # Acting as Discord's users --------------------------------------------------------------

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

    async def delete_message(self, message: StoredMessage) -> None:
        """A moderator deletes a message."""
        message.deleted = True
        await self._dispatch_delete(message)
        await self._notify()

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

    # The app --------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(GATEWAY_PATH, self._gateway)
        app.router.add_get(RESUME_GATEWAY_PATH, self._gateway)
        app.router.add_get(ATTACHMENTS_PATH + "/{channel_id}/{attachment_id}/{filename}", self._attachment)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        app.on_shutdown.append(self._close_connections)
        return app

    def _attachment_base(self) -> str:
        return (self.base_url or "http://127.0.0.1") + ATTACHMENTS_PATH

    async def _close_connections(self, _app: web.Application) -> None:
        for connection in list(self._connections):
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"the stand-in is shutting down")

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        wanted = int(request.match_info["attachment_id"])
        for message in self.messages.values():
            for attachment in message.attachments:
                if attachment.id == wanted:
                    return web.Response(body=attachment.data, content_type=attachment.content_type)
        raise web.HTTPNotFound()

    # Gateway --------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = _Connection(ws, request)
        self._connections.add(connection)
        self._note("connect", request.path_qs)
        try:
            await connection.send({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                await self._gateway_message(connection, json.loads(message.data))
        finally:
            connection.closed.set()
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
            self._note("close", f"code {ws.close_code}")
            await self._notify()
        return ws

    async def _gateway_message(self, connection: _Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await connection.send({"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(connection, data or {})
        elif op == OP_RESUME:
            await self._resume(connection, data or {})
        elif op in (OP_PRESENCE, OP_REQUEST_MEMBERS, 4):
            if connection.session is None:
                await connection.ws.close(code=4003, message=b"Not authenticated.")
        else:
            await connection.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token and data.get("token") != f"Bot {self.token}":
            self._note("identify", "refused: authentication failed")
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & INTENT_MESSAGE_CONTENT and not self.message_content_enabled:
            self._note("identify", "refused: disallowed intents")
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        old = self._session
        if old is not None and old.connection is not None and old.connection is not connection:
            await old.connection.ws.close(code=4005, message=b"Already authenticated.")
        session = _Session(id=secrets.token_hex(16), intents=intents, connection=connection)
        connection.session = session
        self._session = session
        self._note("identify", f"intents {intents}")
        ready = {
            "v": 10,
            "user": {**self.bot.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in self.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ['["wire-standin",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch("READY", ready)
        for guild in self.guilds.values():
            await self._dispatch("GUILD_CREATE", self._guild_create(guild))
        await self._notify()

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = self._session
        if (
            session is None
            or not session.resumable
            or data.get("session_id") != session.id
            or data.get("token") not in (self.token, f"Bot {self.token}")
        ):
            self._note("invalid_session", "unknown session")
            await connection.send({"op": OP_INVALID_SESSION, "d": False})
            return
        if session.connection is not None and session.connection is not connection:
            await session.connection.ws.close(code=4000, message=b"Resumed elsewhere.")
        session.connection = None
        connection.session = session
        replayed = int(data.get("seq") or 0)
        self._note("resume", f"from seq {replayed}")
        # Replay until caught up (events may arrive meanwhile), and only then go live, so order holds.
        while missed := [frame for frame in session.backlog if frame["s"] > replayed]:
            for frame in missed:
                if not await connection.send(frame):
                    return
                replayed = frame["s"]
                hook = session.on_sent.pop(replayed, None)
                if hook is not None:
                    hook()
        session.connection = connection
        await self._dispatch("RESUMED", {"_trace": ['["wire-standin",{"micros":0}]']})
        self._note("resumed", f"session {session.id}")
        await self._notify()

    async def _dispatch(self, event: str, data: Any, *, on_sent: Callable[[], None] | None = None) -> bool:
        """Send an event to the bot's session, kept for a RESUME; False if it is not connected now."""
        session = self._session
        if session is None:
            log.info("gateway: %s dropped, no bot session", event)
            return False
        session.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.backlog.append(frame)
        del session.backlog[:-RESUME_BACKLOG]
        connection = session.connection
        if connection is not None and await connection.send(frame):
            if on_sent is not None:
                on_sent()
            return True
        if on_sent is not None:
            session.on_sent[frame["s"]] = on_sent
        return False

    def _application_flags(self) -> int:
        return APP_FLAG_GATEWAY_MESSAGE_CONTENT if self.message_content_enabled else 0

    def _guild_create(self, guild: StandInGuild) -> dict[str, Any]:
        channels = [c.payload() for c in guild.channels.values() if not c.is_thread]
        threads = [c.payload() for c in guild.channels.values() if c.is_thread]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "features": [],
            "roles": [role.payload() for role in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "joined_at": iso(guild.joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "members": [guild.member_payload(self.bot)],
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "lazy": True,
        }

    def _message_event(self, message: StoredMessage) -> dict[str, Any]:
        payload = message.payload(self._attachment_base())
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
            guild = self.guilds[message.guild_id]
            author_id = int(message.author["id"])
            if message.webhook_id is None and author_id in guild.members:
                payload["member"] = guild.member_payload(self.users[author_id], with_user=False)
        session = self._session
        # Without the Message Content intent, others' messages arrive without their content.
        if (
            session is not None
            and not session.intents & INTENT_MESSAGE_CONTENT
            and message.author["id"] != str(self.bot.id)
            and not any(user["id"] == str(self.bot.id) for user in message.mentions)
        ):
            payload.update(content="", embeds=[], attachments=[], components=[])
        return payload

    async def _dispatch_message(
        self, event: str, message: StoredMessage, *, referenced: StoredMessage | None = None
    ) -> None:
        session = self._session
        if message.ephemeral or session is None or not session.intents & INTENT_GUILD_MESSAGES:
            return
        payload = self._message_event(message)
        if referenced is not None:
            payload["referenced_message"] = referenced.payload(self._attachment_base())
        await self._dispatch(event, payload)

    async def _dispatch_delete(self, message: StoredMessage) -> None:
        session = self._session
        if message.ephemeral or session is None or not session.intents & INTENT_GUILD_MESSAGES:
            return
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self._dispatch("MESSAGE_DELETE", data)

    # REST: the front door -------------------------------------------------------------------

    def run_deferred_checks(self) -> None:
        """Check every body whose check was deferred (see `defer_checks`)."""
        unchecked, self._unchecked = self._unchecked, []
        for method, path, operation, body, answered, status in unchecked:
            self._check_request(method, path, operation, body)
            self._check_answer(method, path, operation, answered, status)

    def _check_request(self, method: str, path: str, operation: Operation, body: Any) -> list[str]:
        problems = self.openapi.request_problems(operation, body)
        if problems:
            self._record_request_problems(method, path, operation, problems, body)
        return problems

    def _record_request_problems(
        self, method: str, path: str, operation: Operation, problems: list[str], body: Any
    ) -> None:
        self.schema_failures.append(SchemaFailure(method, path, operation.template, tuple(problems), body))
        log.warning("%s %s: the body does not follow Discord's schema: %s", method, path, problems)

    def _check_answer(self, method: str, path: str, operation: Operation, body: Any, status: int) -> None:
        if not self.check_answers or body is None:
            return
        problems = self.openapi.response_problems(operation, status, body)
        if problems:
            self.answer_failures.append(SchemaFailure(method, path, operation.template, tuple(problems), body))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        arrived, wall = time.monotonic(), time.time()
        path = request.path[len(API_PREFIX) :] or "/"
        operation = self.openapi.match(request.method, path)
        body, files, unreadable = await self._read_body(request)
        problems: list[str] = []
        if operation is not None and unreadable:
            problems = [unreadable]
            self._record_request_problems(request.method, path, operation, problems, body)
        elif operation is not None and not self.defer_checks:
            problems = self._check_request(request.method, path, operation, body)
        await self._wait_latency(request.method, operation)
        answer = await self._answer(request, path, operation, body, files, problems, arrived)
        answered = answer.body if operation is not None and 200 <= answer.status < 300 else None
        if operation is not None and self.defer_checks and not unreadable:
            self._unchecked.append((request.method, path, operation, body, answered, answer.status))
        elif operation is not None and answered is not None:
            self._check_answer(request.method, path, operation, answered, answer.status)
        call = RestCall(
            method=request.method,
            path=path,
            template=operation.template if operation else None,
            query=dict(request.query),
            json=body,
            files=tuple(filename for _, filename, _, _ in files),
            status=answer.status,
            at=arrived,
            wall=wall,
        )
        self.calls.append(call)
        log.info("%s %s -> %s", request.method, path, answer.status)
        await self._notify()
        headers = {**self._bucket_headers(request.method, operation), **answer.headers}
        if answer.body is None:
            return web.Response(status=answer.status, headers=headers)
        # Exactly `application/json`, no charset: discord.py compares the header as a whole.
        return web.Response(
            status=answer.status,
            body=json.dumps(answer.body).encode(),
            content_type="application/json",
            headers=headers,
        )

    async def _answer(
        self,
        request: web.Request,
        path: str,
        operation: Operation | None,
        body: Any,
        files: list[tuple[str, str, bytes, str]],
        problems: list[str],
        arrived: float,
    ) -> _Answer:
        if operation is None:
            if self.openapi.path_allows(path):
                return _error(405, 0, "405: Method Not Allowed")
            return _error(404, 0, "404: Not Found")
        limited = self._take_rate_limit(operation)
        if limited is not None:
            return limited
        authorization = request.headers.get("Authorization")
        if (authorization is not None or operation.needs_bot_token) and authorization != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        if problems and self.reject_invalid_bodies:
            return _error(400, 50035, "Invalid Form Body", {"_errors": [{"code": "SCHEMA", "message": problems[0]}]})
        handler = self._handlers.get((operation.method, operation.template))
        if handler is None:
            self.unhandled.append(
                RestCall(operation.method, path, operation.template, dict(request.query), body, (), 404, 0, 0)
            )
            return _error(404, 0, "404: Not Found (the stand-in does not serve this route)")
        parsed = _Request(operation.method, path, operation.params, request.query, body, files, operation, arrived)
        return await handler(parsed)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[tuple[str, str, bytes, str]], str]:
        """The JSON body (or multipart `payload_json`), the uploaded files, and a problem reading them."""
        files: list[tuple[str, str, bytes, str]] = []
        if not request.body_exists:
            return None, files, ""
        if request.content_type.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue  # Discord's forms are flat
                if part.name == "payload_json":
                    try:
                        body = json.loads(await part.text())
                    except ValueError:
                        return None, files, "payload_json is not JSON"
                else:
                    data = bytes(await part.read())
                    content_type = part.headers.get("Content-Type", "application/octet-stream")
                    files.append((part.name or "", part.filename or "", data, content_type))
            return body, files, ""
        text = await request.text()
        if not text:
            return None, files, ""
        try:
            return json.loads(text), files, ""
        except ValueError:
            return None, files, "the body is not JSON"

    async def _wait_latency(self, method: str, operation: Operation | None) -> None:
        template = operation.template if operation else None
        seconds = 0.0
        for rule in self._latencies:
            if rule.method in (None, method) and rule.template in (None, template):
                seconds = rule.seconds
        if seconds > 0:
            await self._held.hold(seconds)

    def _take_rate_limit(self, operation: Operation) -> _Answer | None:
        for rule in self._rate_limits:
            if (rule.method, rule.template) != (operation.method, operation.template):
                continue
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rate_limits.remove(rule)
            headers = {
                "Retry-After": str(max(1, math.ceil(rule.retry_after))),
                "X-RateLimit-Limit": str(BUCKET_LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                "X-RateLimit-Bucket": self._bucket(operation),
                "X-RateLimit-Scope": "global" if rule.is_global else "user",
                "Via": "1.1 google",
            }
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
                "code": 0,
            }
            return _Answer(429, body, headers)
        return None

    @staticmethod
    def _bucket(operation: Operation) -> str:
        return hashlib.sha1(f"{operation.method} {operation.template}".encode()).hexdigest()[:16]

    def _bucket_headers(self, method: str, operation: Operation | None) -> dict[str, str]:
        if operation is None:
            return {}
        return {
            "X-RateLimit-Limit": str(BUCKET_LIMIT),
            "X-RateLimit-Remaining": str(BUCKET_LIMIT - 1),
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": self._bucket(operation),
            "Via": "1.1 google",
        }

    def _build_handlers(self) -> dict[tuple[str, str], Handler]:
        webhook = "/webhooks/{webhook_id}/{webhook_token}"
        message = "/channels/{channel_id}/messages/{message_id}"
        return {
            ("GET", "/users/@me"): self._get_me,
            ("GET", "/oauth2/applications/@me"): self._get_application,
            ("GET", "/applications/@me"): self._get_application,
            ("GET", "/gateway"): self._get_gateway,
            ("GET", "/gateway/bot"): self._get_gateway_bot,
            ("GET", "/applications/{application_id}/commands"): self._get_commands,
            ("PUT", "/applications/{application_id}/commands"): self._put_commands,
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands"): self._get_commands,
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): self._put_commands,
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

    # REST: login and gateway ----------------------------------------------------------------

    async def _get_me(self, _request: _Request) -> _Answer:
        return _Answer(
            200,
            {
                **self.bot.payload(),
                "verified": True,
                "mfa_enabled": False,
                "locale": "en-US",
                "email": None,
                "premium_type": 0,
            },
        )

    async def _get_application(self, _request: _Request) -> _Answer:
        return _Answer(
            200,
            {
                "id": str(self.application_id),
                "name": self.bot.name,
                "icon": None,
                "description": "",
                "type": None,
                "bot": self.bot.payload(),
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "integration_types_config": {"0": {}},
                "verify_key": secrets.token_hex(32),
                "flags": self._application_flags(),
                "flags_new": str(self._application_flags()),
                "max_participants": None,
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "owner": self.owner.payload(),
                "approximate_guild_count": len(self.guilds),
                "approximate_user_install_count": 0,
                "approximate_user_authorization_count": 0,
                "explicit_content_filter": 0,
                "eligible_oauth2_scopes": ["bot", "applications.commands"],
                "team": None,
            },
        )

    async def _get_gateway(self, _request: _Request) -> _Answer:
        return _Answer(200, {"url": self.gateway_url})

    async def _get_gateway_bot(self, _request: _Request) -> _Answer:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _Answer(200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    # REST: commands -------------------------------------------------------------------------

    def _command_list(self, request: _Request) -> list[dict[str, Any]] | _Answer:
        if int(request.params["application_id"]) != self.application_id:
            return _error(403, 50001, "Missing Access")
        if "guild_id" not in request.params:
            return self.global_commands
        guild_id = int(request.params["guild_id"])
        if guild_id not in self.guilds:
            return _error(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(guild_id, [])

    async def _get_commands(self, request: _Request) -> _Answer:
        commands = self._command_list(request)
        return commands if isinstance(commands, _Answer) else _Answer(200, commands)

    async def _put_commands(self, request: _Request) -> _Answer:
        current = self._command_list(request)
        if isinstance(current, _Answer):
            return current
        guild_id = int(request.params["guild_id"]) if "guild_id" in request.params else None
        existing = {(command["name"], command.get("type", 1)): command["id"] for command in current}
        synced = []
        for sent in request.json or []:
            kind = sent.get("type", 1)
            command = {
                "id": existing.get((sent["name"], kind)) or str(self.ids.next()),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "type": kind,
                "name": sent["name"],
                "name_localizations": sent.get("name_localizations"),
                "description": sent.get("description", ""),
                "description_localizations": sent.get("description_localizations"),
                "options": sent.get("options") or [],
                "default_member_permissions": sent.get("default_member_permissions"),
                "dm_permission": sent.get("dm_permission", True),
                "contexts": sent.get("contexts"),
                "integration_types": sent.get("integration_types") or [0],
                "nsfw": sent.get("nsfw", False),
            }
            if guild_id is not None:
                command["guild_id"] = str(guild_id)
            synced.append(command)
        if guild_id is None:
            self.global_commands = synced
        else:
            self.guild_commands[guild_id] = synced
        self.command_syncs.append((guild_id, time.monotonic()))
        return _Answer(200, synced)

    # REST: interactions ---------------------------------------------------------------------

    async def _callback(self, request: _Request) -> _Answer:
        record = self.interactions.get(int(request.params["interaction_id"]))
        if record is None or record.token != request.params["interaction_token"]:
            return _error(404, 10062, "Unknown interaction")
        arrived = request.arrived
        if arrived - record.created_at > self.interaction_answer_window:
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
        if message is not None and kind in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_UPDATE_MESSAGE):
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
        username = body.get("username") or owner.name
        if not 1 <= len(username) <= 80 or any(word in username.lower() for word in FORBIDDEN_WEBHOOK_NAMES):
            return _form_error("username", "USERNAME_INVALID", "Username cannot contain that name")
        # A webhook's messages are authored by a pseudo-user: the webhook's id, the name it posted under.
        author = {**StandInUser(owner.id, username, bot=True).payload(), "discriminator": "0000"}
        message = self._new_message(channel_id, author=author, webhook_id=owner.id, application_id=owner.application_id)
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

    # REST: channels -------------------------------------------------------------------------

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
        webhook = ChannelWebhook(
            id=self.ids.next(),
            token=secrets.token_urlsafe(51),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            name=name,
            creator_id=self.bot.id,
            application_id=self.application_id,
        )
        self.webhooks[webhook.id] = webhook
        return _Answer(200, webhook.payload(self.bot.payload()))

    # Messages -------------------------------------------------------------------------------

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


# --- Serving ------------------------------------------------------------------------------------


def serve(standin: DiscordStandIn) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve the stand-in on a free loopback port; yields its base URL (`http://127.0.0.1:PORT`)."""
    return serve_fake(standin)
