"""The chat model's tokens per server, persona and UTC day: ROLEPLAY_DAILY_TOKENS_PER_GUILD and /roleplay status."""

from __future__ import annotations

from storage.database import Database


class UsageStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_tokens(self, *, guild_id: int, persona_id: int, day: str, tokens: int) -> int:
        """Add `tokens` to the persona's count that day; the guild's total that day, all personas, after adding.

        One transaction, serialised per guild and day, so the total returned is the stored sum even
        when several turns (or processes) add at once.
        """
        async with self._db.transaction() as transaction:
            await transaction.lock(f"chat-usage:{guild_id}:{day}")
            await transaction.execute(
                "INSERT INTO chat_usage (guild_id, persona_id, day, tokens) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (guild_id, persona_id, day) DO UPDATE SET tokens = chat_usage.tokens + excluded.tokens",
                (guild_id, persona_id, day, tokens),
            )
            row = await transaction.fetch_one(
                "SELECT SUM(tokens) FROM chat_usage WHERE day = ? AND guild_id = ?", (day, guild_id)
            )
        assert row is not None and row[0] is not None  # the row written above
        return int(row[0])

    async def guild_tokens(self, guild_id: int, day: str) -> int:
        """The guild's tokens that day, all personas together."""
        row = await self._db.fetch_one(
            "SELECT COALESCE(SUM(tokens), 0) FROM chat_usage WHERE day = ? AND guild_id = ?", (day, guild_id)
        )
        return int(row[0]) if row else 0

    async def by_persona(self, guild_id: int, day: str) -> dict[int, int]:
        """persona id -> tokens that day, for the guild's personas that used any, most first."""
        rows = await self._db.fetch_all(
            "SELECT persona_id, tokens FROM chat_usage WHERE day = ? AND guild_id = ? ORDER BY tokens DESC, persona_id",
            (day, guild_id),
        )
        return {int(row["persona_id"]): int(row["tokens"]) for row in rows}

    async def prune(self, *, before_day: str) -> int:
        """Drop the counts of days before `before_day` ('YYYY-MM-DD'); how many rows went."""
        return await self._db.write("DELETE FROM chat_usage WHERE day < ?", (before_day,))
