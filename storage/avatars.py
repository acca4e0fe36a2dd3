"""Persona avatars: the picture's bytes (the source of truth) and where Discord shows it now.

Every call names the guild as well as the persona, and touches a row only when the persona belongs
to that guild: an avatar of another server's persona is never read, set or cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storage.database import Database

AvatarSource = Literal["upload", "link", "card"]

_COLUMNS = "a.persona_id, a.image, a.content_type, a.source, a.link, a.hosted_url, a.holder_webhook_id, a.updated_at"


@dataclass(frozen=True)
class Avatar:
    persona_id: int
    image: bytes
    content_type: str
    source: AvatarSource
    link: str | None  # the https link a `link` avatar was downloaded from, once
    hosted_url: str | None  # where Discord serves the picture (None: not hosted yet)
    holder_webhook_id: int | None  # the webhook whose avatar it is
    updated_at: float  # also what a late hosting compares against: the picture it hosted is still this one

    @classmethod
    def from_row(cls, row: object) -> Avatar:
        values = dict(row)  # type: ignore[call-overload]
        values["image"] = bytes(values["image"])  # sqlite3 may hand back a memoryview
        return cls(**values)


class AvatarStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, guild_id: int, persona_id: int) -> Avatar | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM persona_avatars a JOIN personas p ON p.id = a.persona_id"
            " WHERE a.persona_id = ? AND p.guild_id = ?",
            (persona_id, guild_id),
        )
        return Avatar.from_row(row) if row else None

    async def hosted_urls(self, guild_id: int, persona_ids: list[int]) -> dict[int, str]:
        """persona id -> its hosted URL, for those of `persona_ids` in this guild that have one."""
        if not persona_ids:
            return {}
        marks = ", ".join("?" for _ in persona_ids)
        rows = await self._db.fetch_all(
            "SELECT a.persona_id, a.hosted_url FROM persona_avatars a JOIN personas p ON p.id = a.persona_id"
            f" WHERE p.guild_id = ? AND a.hosted_url IS NOT NULL AND a.persona_id IN ({marks})",
            (guild_id, *persona_ids),
        )
        return {row[0]: row[1] for row in rows}

    async def set(
        self,
        guild_id: int,
        persona_id: int,
        *,
        image: bytes,
        content_type: str,
        source: AvatarSource,
        link: str | None,
        hosted_url: str | None,
        holder_webhook_id: int | None,
        now: float,
    ) -> Avatar | None:
        """Give the persona this picture; the avatar it replaces (its holder is the caller's to delete).

        Raises LookupError when the persona is not in this guild (deleted meanwhile, or another's).
        """
        async with self._db.transaction() as transaction:
            owner = await transaction.fetch_one(
                "SELECT id FROM personas WHERE id = ? AND guild_id = ?", (persona_id, guild_id)
            )
            if owner is None:
                raise LookupError(persona_id)
            before = await transaction.fetch_one(
                f"SELECT {_COLUMNS} FROM persona_avatars a WHERE a.persona_id = ?", (persona_id,)
            )
            values = {
                "persona_id": persona_id,
                "image": image,
                "content_type": content_type,
                "source": source,
                "link": link,
                "hosted_url": hosted_url,
                "holder_webhook_id": holder_webhook_id,
                "updated_at": now,
            }
            await transaction.execute(
                "INSERT INTO persona_avatars"
                " (persona_id, image, content_type, source, link, hosted_url, holder_webhook_id, updated_at)"
                " VALUES (:persona_id, :image, :content_type, :source, :link, :hosted_url, :holder_webhook_id,"
                " :updated_at)"
                " ON CONFLICT (persona_id) DO UPDATE SET image = excluded.image,"
                " content_type = excluded.content_type, source = excluded.source, link = excluded.link,"
                " hosted_url = excluded.hosted_url, holder_webhook_id = excluded.holder_webhook_id,"
                " updated_at = excluded.updated_at",
                values,
            )
        return Avatar.from_row(before) if before else None

    async def set_hosted(self, avatar: Avatar, *, hosted_url: str, holder_webhook_id: int) -> bool:
        """Record where `avatar` is hosted now; False when its picture changed meanwhile (nothing written)."""
        changed = await self._db.write(
            "UPDATE persona_avatars SET hosted_url = ?, holder_webhook_id = ? WHERE persona_id = ? AND updated_at = ?",
            (hosted_url, holder_webhook_id, avatar.persona_id, avatar.updated_at),
        )
        return changed > 0

    async def clear(self, guild_id: int, persona_id: int) -> Avatar | None:
        """Remove the persona's avatar; the one removed (its holder is the caller's to delete), or None."""
        rows = await self._db.write_returning(
            "DELETE FROM persona_avatars WHERE persona_id = ?"
            " AND persona_id IN (SELECT id FROM personas WHERE id = ? AND guild_id = ?)"
            " RETURNING persona_id, image, content_type, source, link, hosted_url, holder_webhook_id, updated_at",
            (persona_id, persona_id, guild_id),
        )
        return Avatar.from_row(rows[0]) if rows else None
