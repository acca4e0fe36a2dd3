"""What a channel was told once a day (a cap reached, credits spent): so a restart does not tell it again."""

from __future__ import annotations

from storage.database import Database


class ChannelNotices:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim(self, *, channel_id: int, day: str, kind: str) -> bool:
        """Whether to tell the channel of `kind` on `day`: True for the first caller only, in any process."""
        inserted = await self._db.write(
            "INSERT INTO channel_notices (day, channel_id, kind) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (day, channel_id, kind),
        )
        return inserted == 1
