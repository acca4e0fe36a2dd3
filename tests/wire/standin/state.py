"""`StandInState`: the typed state every mixin shares, the world a test builds in it, and what tests ask of it."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.loopback import HeldRequests
from tests.wire.openapi import OpenAPI, shared_openapi
from tests.wire.standin.constants import (
    API_PREFIX,
    APP_FLAG_GATEWAY_MESSAGE_CONTENT,
    ATTACHMENTS_PATH,
    BOT_PERMISSIONS,
    CHANNEL_PUBLIC_THREAD,
    CHANNEL_TEXT,
    COMMAND_CHAT_INPUT,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_TOKEN,
    EVERYONE_PERMISSIONS,
    GATEWAY_PATH,
    INTERACTION_ANSWER_WINDOW,
    INTERACTION_TOKEN_LIFETIME,
    MANAGE_GUILD,
    RESUME_GATEWAY_PATH,
    Snowflakes,
)
from tests.wire.standin.plumbing import Handler, _Connection, _Latency, _RateLimit, _Session, _Unchecked
from tests.wire.standin.records import (
    Attachment,
    ChannelWebhook,
    GatewayEvent,
    InteractionRecord,
    RestCall,
    SchemaFailure,
    StoredMessage,
)
from tests.wire.standin.world import StandInChannel, StandInGuild, StandInRole, StandInUser

log = logging.getLogger(__name__)


class StandInState(ABC):
    """All state of one local Discord, typed; every mixin derives from it (see the package docstring)."""

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
        self._unchecked: list[_Unchecked] = []
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
        self.uploads: dict[int, Attachment] = {}  # files members attached to a command's options
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
        # Discord routes a server's events to shard (guild_id >> 22) % shard_count; one session a shard.
        self.shard_count = 1
        self._sessions: dict[int, _Session] = {}
        self._connections: set[_Connection] = set()
        self._rate_limits: list[_RateLimit] = []
        # Discord's global limit over the whole bot, when a test sets one (`enforce_global_limit()`):
        # arrival times of the last second's counted requests, and how many were refused with a 429.
        self.global_limit: float | None = None
        self._global_window: deque[float] = deque()
        self.global_limit_refusals = 0
        self._latencies: list[_Latency] = []
        self._held = HeldRequests()  # requests slowed by `slow()`
        self._changed = asyncio.Condition()
        self._handlers = self._build_handlers()
        self.app = self._build_app()

    @abstractmethod
    def _build_handlers(self) -> dict[tuple[str, str], Handler]:
        """The REST routes, `(method, documented template) -> handler`: `DiscordStandIn` gathers them."""

    @abstractmethod
    def _build_app(self) -> web.Application:
        """The aiohttp application: gateway, attachments, REST; `DiscordStandIn` builds it."""

    # The world ------------------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> StandInUser:
        user = StandInUser(self.ids.next(), name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self, name: str = "Wire Test Server", *, owner: StandInUser | None = None, shard: int | None = None
    ) -> StandInGuild:
        """A guild the bot is in, with @everyone, a Moderators role (Manage Server) and the bot's role.

        `shard`: an id whose events Discord would route to that shard of `shard_count`.
        """
        guild_id = self.ids.next()
        if shard is not None:  # the shard is in the id's timestamp bits: move them, keep the rest
            guild_id += ((shard - (guild_id >> 22)) % self.shard_count) << 22
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

    # Where it is served ---------------------------------------------------------------------

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

    def _attachment_base(self) -> str:
        return (self.base_url or "http://127.0.0.1") + ATTACHMENTS_PATH

    def _application_flags(self) -> int:
        return APP_FLAG_GATEWAY_MESSAGE_CONTENT if self.message_content_enabled else 0

    # Inspection -----------------------------------------------------------------------------

    @property
    def _session(self) -> _Session | None:
        """Shard 0's session: the only one unless `shard_count` is raised."""
        return self._sessions.get(0)

    def _session_for(self, guild_id: int | None) -> _Session | None:
        shard = 0 if guild_id is None else (guild_id >> 22) % self.shard_count
        return self._sessions.get(shard)

    def shards_identified(self) -> list[int]:
        return sorted(self._sessions)

    def events_on_shard(self, shard: int, event: str) -> list[dict[str, Any]]:
        """The payloads of `event` sent on one shard's session (its recent ones, as kept for a RESUME)."""
        session = self._sessions.get(shard)
        return [frame["d"] for frame in (session.backlog if session else []) if frame["t"] == event]

    @property
    def connected(self) -> bool:
        """Shard 0 (the only shard unless `shard_count` is raised) has a live gateway connection."""
        return self.shard_connected(0)

    def shard_connected(self, shard: int) -> bool:
        session = self._sessions.get(shard)
        return bool(session and session.connection and not session.connection.closed.is_set())

    @property
    def session_id(self) -> str | None:
        return self._session.id if self._session else None

    @property
    def late_callbacks_refused(self) -> int:
        """Interactions whose callback came after the answer window, refused with 10062 as Discord does."""
        return sum(1 for record in self.interactions.values() if record.refused_at is not None)

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

    def command(
        self, name: str, guild_id: int | None = None, *, kind: int = COMMAND_CHAT_INPUT
    ) -> dict[str, Any] | None:
        """A synced top-level command of that kind (slash, or a message's right-click menu): the guild's own
        first, then the global one."""
        for command in [*self.guild_commands.get(guild_id or 0, []), *self.global_commands]:
            if command["name"] == name and command.get("type", COMMAND_CHAT_INPUT) == kind:
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
