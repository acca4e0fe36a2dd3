"""Roleplay sessions, the messages personas sent, channel webhooks and server choices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from storage.database import Database
from storage.errors import IntegrityError

# mention: answers when named, replied to or mentioned; always: answers every member message;
# natural: Humalike's turn-taking decides when it joins in (bot/roleplay/natural/); narrator: a game
# master that answers only when named, replied to or called with /scene narrate (bot/roleplay/narrator.py).
RoleplayMode = Literal["mention", "always", "natural", "narrator"]


@dataclass(frozen=True)
class Session:
    id: int
    guild_id: int
    channel_id: int
    persona_id: int
    persona_name: str
    mode: RoleplayMode
    started_by: int
    started_at: float
    last_activity_at: float


@dataclass(frozen=True)
class GuildRoleplaySettings:
    starter_role_id: int | None = None
    allowed_channels: tuple[int, ...] | None = None  # None: every channel


@dataclass(frozen=True)
class MessageOrigin:
    """Where a persona's message came from (persona_messages)."""

    channel_id: int
    persona_id: int
    session_id: int


class AlreadyActive(Exception):
    """This persona already speaks in this channel."""


class TooManyActive(Exception):
    def __init__(self, active: int) -> None:
        super().__init__(f"{active} personas already active")
        self.active = active


# Discord's epoch, in milliseconds since the Unix epoch: snowflakes count from it.
DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_at(timestamp: float) -> int:
    """The smallest snowflake Discord could give a message made at `timestamp` (seconds since the Unix epoch)."""
    return max(0, int(timestamp * 1000) - DISCORD_EPOCH_MS) << 22


_SESSION_COLUMNS = (
    "s.id, s.guild_id, s.channel_id, s.persona_id, p.name AS persona_name, s.mode, s.started_by,"
    " s.started_at, s.last_activity_at"
)


class RoleplayStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def start(
        self,
        *,
        guild_id: int,
        channel_id: int,
        persona_id: int,
        mode: RoleplayMode,
        started_by: int,
        now: float,
        max_active_in_guild: int,
    ) -> Session:
        async with self._db.transaction() as transaction:
            await transaction.lock(f"roleplay-guild:{guild_id}")  # the count below stays true until commit
            counted = await transaction.fetch_one(
                "SELECT COUNT(*) FROM roleplay_sessions WHERE guild_id = ? AND ended_at IS NULL", (guild_id,)
            )
            active = counted[0] if counted else 0
            if active >= max_active_in_guild:
                raise TooManyActive(active)
            try:
                inserted = await transaction.fetch_one(
                    "INSERT INTO roleplay_sessions (guild_id, channel_id, persona_id, mode, started_by, started_at,"
                    " last_activity_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (guild_id, channel_id, persona_id, mode, started_by, now, now),
                )
            except IntegrityError:
                raise AlreadyActive() from None
            assert inserted is not None  # RETURNING id
            row = await transaction.fetch_one(
                f"SELECT {_SESSION_COLUMNS} FROM roleplay_sessions s JOIN personas p ON p.id = s.persona_id"
                " WHERE s.id = ?",
                (inserted[0],),
            )
            assert row is not None  # inserted above, in this transaction
            return Session(**dict(row))

    async def active(self, *, channel_id: int | None = None, guild_id: int | None = None) -> list[Session]:
        """Active sessions of one channel, of one guild, or (neither given) everywhere."""
        where, params = "s.ended_at IS NULL", []
        if channel_id is not None:
            where += " AND s.channel_id = ?"
            params.append(channel_id)
        if guild_id is not None:
            where += " AND s.guild_id = ?"
            params.append(guild_id)
        rows = await self._db.fetch_all(
            f"SELECT {_SESSION_COLUMNS} FROM roleplay_sessions s JOIN personas p ON p.id = s.persona_id"
            f" WHERE {where} ORDER BY s.started_at, s.id",
            params,
        )
        return [Session(**dict(row)) for row in rows]

    async def end(self, session_id: int, *, now: float, reason: str) -> bool:
        changed = await self._db.write(
            "UPDATE roleplay_sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
            (now, reason, session_id),
        )
        return changed > 0

    async def set_mode(self, session_id: int, mode: RoleplayMode) -> None:
        await self._db.write("UPDATE roleplay_sessions SET mode = ? WHERE id = ?", (mode, session_id))

    async def touch(self, session_id: int, *, now: float) -> None:
        await self._db.write("UPDATE roleplay_sessions SET last_activity_at = ? WHERE id = ?", (now, session_id))

    async def record_message(
        self, *, message_id: int, channel_id: int, persona_id: int, session_id: int, now: float
    ) -> None:
        await self._db.write(
            "INSERT INTO persona_messages (message_id, channel_id, persona_id, session_id, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
            (message_id, channel_id, persona_id, session_id, now),
        )

    async def prune_messages(self, *, older_than: float) -> int:
        """Forget which persona sent the messages recorded before `older_than`; how many were forgotten."""
        # A message id is a Discord snowflake, its creation time in its top bits: the primary key's range
        # then finds the old rows without scanning the table or needing an index on created_at. The
        # created_at test keeps ids that are not snowflakes (a stand-in's) from being taken for old ones.
        return await self._db.write(
            "DELETE FROM persona_messages WHERE message_id < ? AND created_at < ?",
            (snowflake_at(older_than), older_than),
        )

    async def persona_of_messages(self, message_ids: list[int]) -> dict[int, int]:
        """message id -> persona id, for the given messages that a persona sent."""
        if not message_ids:
            return {}
        marks = ", ".join("?" for _ in message_ids)
        rows = await self._db.fetch_all(
            f"SELECT message_id, persona_id FROM persona_messages WHERE message_id IN ({marks})", message_ids
        )
        return {row["message_id"]: row["persona_id"] for row in rows}

    async def message_origin(self, message_id: int) -> MessageOrigin | None:
        """Which persona, session and channel a persona's message belongs to; None for any other message."""
        row = await self._db.fetch_one(
            "SELECT channel_id, persona_id, session_id FROM persona_messages WHERE message_id = ?", (message_id,)
        )
        return MessageOrigin(row["channel_id"], row["persona_id"], row["session_id"]) if row else None

    async def webhook(self, channel_id: int) -> tuple[int, str] | None:
        row = await self._db.fetch_one(
            "SELECT webhook_id, webhook_token FROM channel_webhooks WHERE channel_id = ?", (channel_id,)
        )
        return (row["webhook_id"], row["webhook_token"]) if row else None

    async def remember_webhook(self, channel_id: int, webhook_id: int, token: str) -> None:
        await self._db.write(
            "INSERT INTO channel_webhooks (channel_id, webhook_id, webhook_token) VALUES (?, ?, ?)"
            " ON CONFLICT(channel_id) DO UPDATE SET webhook_id = excluded.webhook_id,"
            " webhook_token = excluded.webhook_token",
            (channel_id, webhook_id, token),
        )

    async def forget_webhook(self, channel_id: int) -> None:
        await self._db.write("DELETE FROM channel_webhooks WHERE channel_id = ?", (channel_id,))

    async def guild_settings(self, guild_id: int) -> GuildRoleplaySettings:
        row = await self._db.fetch_one(
            "SELECT starter_role_id, allowed_channels FROM guild_roleplay_settings WHERE guild_id = ?", (guild_id,)
        )
        if row is None:
            return GuildRoleplaySettings()
        channels = json.loads(row["allowed_channels"]) if row["allowed_channels"] else None
        return GuildRoleplaySettings(row["starter_role_id"], tuple(channels) if channels is not None else None)

    async def save_guild_settings(self, guild_id: int, settings: GuildRoleplaySettings) -> None:
        channels = json.dumps(list(settings.allowed_channels)) if settings.allowed_channels is not None else None
        await self._db.write(
            "INSERT INTO guild_roleplay_settings (guild_id, starter_role_id, allowed_channels) VALUES (?, ?, ?)"
            " ON CONFLICT(guild_id) DO UPDATE SET starter_role_id = excluded.starter_role_id,"
            " allowed_channels = excluded.allowed_channels",
            (guild_id, settings.starter_role_id, channels),
        )
