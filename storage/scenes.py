"""What a channel keeps between sessions: its scene and its last "previously on…" recap.

Rows are keyed by channel and carry the channel's guild: every read asks for both, so a channel id
from another server finds nothing even if one were ever passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database

# How many of a channel's latest sessions are read to find where the current (or last) one began.
RECENT_SESSIONS = 50


@dataclass(frozen=True)
class Scene:
    channel_id: int
    guild_id: int
    text: str
    set_by: int
    set_at: float


@dataclass(frozen=True)
class Recap:
    channel_id: int
    guild_id: int
    text: str
    written_by: int
    written_at: float


@dataclass(frozen=True)
class SessionSpan:
    """When one persona's session in a channel started and ended (None: still active)."""

    started_at: float
    ended_at: float | None


class SceneStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def scene(self, guild_id: int, channel_id: int) -> Scene | None:
        row = await self._db.fetch_one(
            "SELECT channel_id, guild_id, text, set_by, set_at FROM channel_scenes"
            " WHERE channel_id = ? AND guild_id = ?",
            (channel_id, guild_id),
        )
        return Scene(**dict(row)) if row else None

    async def set_scene(self, *, guild_id: int, channel_id: int, text: str, set_by: int, now: float) -> Scene:
        await self._db.write(
            "INSERT INTO channel_scenes (channel_id, guild_id, text, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (channel_id) DO UPDATE SET guild_id = excluded.guild_id, text = excluded.text,"
            " set_by = excluded.set_by, set_at = excluded.set_at",
            (channel_id, guild_id, text, set_by, now),
        )
        return Scene(channel_id, guild_id, text, set_by, now)

    async def clear_scene(self, guild_id: int, channel_id: int) -> bool:
        """Forget the channel's scene; False when it had none."""
        changed = await self._db.write(
            "DELETE FROM channel_scenes WHERE channel_id = ? AND guild_id = ?", (channel_id, guild_id)
        )
        return changed > 0

    async def recap(self, guild_id: int, channel_id: int) -> Recap | None:
        row = await self._db.fetch_one(
            "SELECT channel_id, guild_id, text, written_by, written_at FROM channel_recaps"
            " WHERE channel_id = ? AND guild_id = ?",
            (channel_id, guild_id),
        )
        return Recap(**dict(row)) if row else None

    async def set_recap(self, *, guild_id: int, channel_id: int, text: str, written_by: int, now: float) -> Recap:
        """Keep `text` as the channel's recap, in place of any earlier one."""
        await self._db.write(
            "INSERT INTO channel_recaps (channel_id, guild_id, text, written_by, written_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (channel_id) DO UPDATE SET guild_id = excluded.guild_id, text = excluded.text,"
            " written_by = excluded.written_by, written_at = excluded.written_at",
            (channel_id, guild_id, text, written_by, now),
        )
        return Recap(channel_id, guild_id, text, written_by, now)

    async def clear_recap(self, guild_id: int, channel_id: int) -> bool:
        """Forget the channel's recap; False when it had none."""
        changed = await self._db.write(
            "DELETE FROM channel_recaps WHERE channel_id = ? AND guild_id = ?", (channel_id, guild_id)
        )
        return changed > 0

    async def session_spans(self, guild_id: int, channel_id: int) -> list[SessionSpan]:
        """The channel's latest roleplay sessions, newest first: what a recap or an export covers."""
        rows = await self._db.fetch_all(
            "SELECT started_at, ended_at FROM roleplay_sessions WHERE channel_id = ? AND guild_id = ?"
            " ORDER BY started_at DESC, id DESC LIMIT ?",
            (channel_id, guild_id, RECENT_SESSIONS),
        )
        return [SessionSpan(row["started_at"], row["ended_at"]) for row in rows]
