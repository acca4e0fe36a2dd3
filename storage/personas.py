"""Saved personas, named uniquely per guild."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import aiosqlite

from storage.database import Database
from storage.models import Job, JobState, Persona, name_key

# "Sam", then "Sam (2)", "Sam (3)", ...: a clash never loses a paid-for persona.
MAX_NAME_SUFFIX = 1000
MAX_NAME_LENGTH = 80  # a webhook username's limit, as in bot/enhance/naming.py


@dataclass(frozen=True)
class SavedPersona:
    persona: Persona
    newly_saved: bool  # False when this enhancement had been saved before


@dataclass(frozen=True)
class PersonaSummary:
    id: int
    name: str
    creator_id: int
    creator_name: str | None
    created_at: float


class PersonaStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, persona_id: int) -> Persona | None:
        row = await self._db.fetch_one("SELECT * FROM personas WHERE id = ?", (persona_id,))
        return Persona.from_row(row) if row else None

    async def get_by_name(self, guild_id: int, name: str) -> Persona | None:
        row = await self._db.fetch_one(
            "SELECT * FROM personas WHERE guild_id = ? AND name_key = ?", (guild_id, name_key(name))
        )
        return Persona.from_row(row) if row else None

    async def name_taken(self, guild_id: int, name: str) -> bool:
        return await self.get_by_name(guild_id, name) is not None

    async def search(self, guild_id: int, typed: str, *, limit: int = 25) -> list[PersonaSummary]:
        """This guild's personas whose name starts with, then contains, what was typed; newest first."""
        key = name_key(typed)
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._db.fetch_all(
            "SELECT id, name, creator_id, creator_name, created_at FROM personas"
            " WHERE guild_id = ? AND name_key LIKE ? ESCAPE '\\'"
            " ORDER BY (name_key LIKE ? ESCAPE '\\') DESC, created_at DESC LIMIT ?",
            (guild_id, f"%{escaped}%", f"{escaped}%", limit),
        )
        return [PersonaSummary(**dict(row)) for row in rows]

    async def save_enhanced(
        self,
        job: Job,
        *,
        name: str,
        humalike_persona_id: str,
        fields: dict[str, str],
        system_prompt: str,
        markdown: str,
        now: float,
    ) -> SavedPersona:
        """Save the persona of a succeeded job and close the job, in one transaction.

        Keyed by the enhancement id, so a second call (a restart, a duplicate
        poll) finds the first save instead of making another.
        """
        async with self._db.transaction() as connection:
            async with connection.execute(
                "SELECT * FROM personas WHERE enhancement_id = ?", (job.enhancement_id,)
            ) as cursor:
                existing = await cursor.fetchone()
            if existing is not None:
                persona = Persona.from_row(existing)
                await _close_job(connection, job.id, persona.id, now)
                return SavedPersona(persona, newly_saved=False)

            for attempt in range(1, MAX_NAME_SUFFIX + 1):
                suffix = "" if attempt == 1 else f" ({attempt})"
                candidate = name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
                try:
                    async with connection.execute(
                        "INSERT INTO personas (guild_id, name, name_key, creator_id, enhancement_id,"
                        " humalike_persona_id, fields_json, system_prompt, markdown, sketch, grounding,"
                        " created_at, updated_at, creator_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            job.guild_id,
                            candidate,
                            name_key(candidate),
                            job.user_id,
                            job.enhancement_id,
                            humalike_persona_id,
                            json.dumps(fields, ensure_ascii=False),
                            system_prompt,
                            markdown,
                            job.sketch,
                            job.grounding,
                            now,
                            now,
                            job.user_name,
                        ),
                    ) as cursor:
                        persona_id = cursor.lastrowid
                    break
                except sqlite3.IntegrityError:
                    continue
            else:
                raise RuntimeError(f"no free name for {name!r} after {MAX_NAME_SUFFIX} tries")
            await _close_job(connection, job.id, persona_id, now)
            async with connection.execute("SELECT * FROM personas WHERE id = ?", (persona_id,)) as cursor:
                persona = Persona.from_row(await cursor.fetchone())
            return SavedPersona(persona, newly_saved=True)


async def _close_job(connection: aiosqlite.Connection, job_id: int, persona_id: int, now: float) -> None:
    await connection.execute(
        "UPDATE jobs SET state = ?, persona_id = ?, finished_at = COALESCE(finished_at, ?) WHERE id = ?",
        (JobState.SUCCEEDED.value, persona_id, now, job_id),
    )
