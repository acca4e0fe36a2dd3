"""Casts: the personas one population job produced, saved together and once."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database, Transaction
from storage.models import Job, JobState, NewPersona, Persona, name_key
from storage.names import insert_with_free_name, name_patterns
from storage.personas import insert_persona


@dataclass(frozen=True)
class Cast:
    id: int
    guild_id: int
    name: str
    creator_id: int
    prompt: str
    created_at: float
    members: tuple[Persona, ...]


class CastStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def save_population(self, job: Job, *, cast_name: str, members: list[NewPersona], now: float) -> Cast:
        """Save every member as a persona of the guild and the cast that groups them, in one transaction.

        Keyed by the job, so a second call (a restart, a duplicate poll) returns the first save.
        """
        async with self._db.transaction() as transaction:
            await transaction.lock(f"population:{job.id}")  # two processes polling it at once
            existing = await transaction.fetch_one("SELECT id FROM casts WHERE job_id = ?", (job.id,))
            if existing is None:
                cast_id = await _insert_cast(transaction, job, cast_name, now)
                for position, member in enumerate(members):
                    persona_id = await insert_persona(transaction, member)
                    await transaction.execute(
                        "INSERT INTO cast_members (cast_id, persona_id, position) VALUES (?, ?, ?)",
                        (cast_id, persona_id, position),
                    )
            else:
                cast_id = existing[0]
            await transaction.execute(
                "UPDATE jobs SET state = ?, finished_at = COALESCE(finished_at, ?) WHERE id = ?",
                (JobState.SUCCEEDED.value, now, job.id),
            )
        cast = await self.get(cast_id)
        assert cast is not None
        return cast

    async def get(self, cast_id: int) -> Cast | None:
        row = await self._db.fetch_one("SELECT * FROM casts WHERE id = ?", (cast_id,))
        if row is None:
            return None
        members = await self._db.fetch_all(
            "SELECT p.* FROM cast_members m JOIN personas p ON p.id = m.persona_id WHERE m.cast_id = ?"
            " ORDER BY m.position",
            (cast_id,),
        )
        return Cast(
            id=row["id"],
            guild_id=row["guild_id"],
            name=row["name"],
            creator_id=row["creator_id"],
            prompt=row["prompt"],
            created_at=row["created_at"],
            members=tuple(Persona.from_row(member) for member in members),
        )

    async def by_job(self, job_id: int) -> Cast | None:
        row = await self._db.fetch_one("SELECT id FROM casts WHERE job_id = ?", (job_id,))
        return await self.get(row["id"]) if row else None

    async def by_name(self, guild_id: int, name: str) -> Cast | None:
        row = await self._db.fetch_one(
            "SELECT id FROM casts WHERE guild_id = ? AND name_key = ?", (guild_id, name_key(name))
        )
        return await self.get(row["id"]) if row else None

    async def search(self, guild_id: int, typed: str, *, limit: int = 25) -> list[tuple[str, int]]:
        """(name, member count) of this guild's casts containing what was typed, newest first."""
        contains, _ = name_patterns(typed)
        rows = await self._db.fetch_all(
            "SELECT c.name, COUNT(m.persona_id) AS size FROM casts c LEFT JOIN cast_members m ON m.cast_id = c.id"
            " WHERE c.guild_id = ? AND c.name_key LIKE ? ESCAPE '\\' GROUP BY c.id ORDER BY c.created_at DESC LIMIT ?",
            (guild_id, contains, limit),
        )
        return [(row["name"], row["size"]) for row in rows]


_INSERT_CAST = (
    "INSERT INTO casts (guild_id, name, name_key, job_id, creator_id, prompt, created_at)"
    " VALUES (:guild_id, :name, :name_key, :job_id, :creator_id, :prompt, :created_at) RETURNING id"
)


async def _insert_cast(transaction: Transaction, job: Job, name: str, now: float) -> int:
    values = {"guild_id": job.guild_id, "job_id": job.id, "creator_id": job.user_id, "prompt": job.sketch}
    return await insert_with_free_name(
        transaction, table="casts", insert=_INSERT_CAST, name=name, values={**values, "created_at": now}
    )
