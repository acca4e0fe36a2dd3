"""Saved personas, named uniquely per guild."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
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


class NameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


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

    async def page(
        self, guild_id: int, *, creator_id: int | None = None, offset: int = 0, limit: int = 10
    ) -> tuple[list[PersonaSummary], int]:
        """One page of this guild's personas (optionally one creator's), newest first, and the total."""
        where, params = "guild_id = ?", [guild_id]
        if creator_id is not None:
            where += " AND creator_id = ?"
            params.append(creator_id)
        total_row = await self._db.fetch_one(f"SELECT COUNT(*) FROM personas WHERE {where}", params)
        rows = await self._db.fetch_all(
            f"SELECT id, name, creator_id, creator_name, created_at FROM personas WHERE {where}"
            " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [PersonaSummary(**dict(row)) for row in rows], (total_row[0] if total_row else 0)

    async def update(self, persona: Persona, *, name: str, system_prompt: str, now: float) -> Persona:
        """Rename and/or rewrite the prompt; NameTaken when another persona here has the name."""
        try:
            await self._db.write(
                "UPDATE personas SET name = ?, name_key = ?, system_prompt = ?, updated_at = ? WHERE id = ?",
                (name, name_key(name), system_prompt, now, persona.id),
            )
        except sqlite3.IntegrityError:
            raise NameTaken(name) from None
        updated = await self.get(persona.id)
        assert updated is not None
        return updated

    async def delete(self, persona_id: int) -> bool:
        return await self._db.write("DELETE FROM personas WHERE id = ?", (persona_id,)) > 0

    async def save_imported(
        self,
        *,
        guild_id: int,
        creator_id: int,
        creator_name: str,
        name: str,
        humalike_persona_id: str | None,
        fields: dict[str, str],
        system_prompt: str,
        markdown: str,
        sketch: str,
        grounding: str,
        now: float,
    ) -> Persona:
        """Save a persona that came from a card file, with a numbered name if the name is taken."""
        async with self._db.transaction() as connection:
            persona_id = await insert_with_free_name(
                connection,
                guild_id,
                name,
                lambda candidate: (
                    guild_id,
                    candidate,
                    name_key(candidate),
                    creator_id,
                    None,
                    humalike_persona_id,
                    json.dumps(fields, ensure_ascii=False),
                    system_prompt,
                    markdown,
                    sketch,
                    grounding,
                    now,
                    now,
                    creator_name,
                ),
            )
        persona = await self.get(persona_id)
        assert persona is not None
        return persona

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

            persona_id = await insert_with_free_name(
                connection,
                job.guild_id,
                name,
                lambda candidate: (
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
            )
            await _close_job(connection, job.id, persona_id, now)
            async with connection.execute("SELECT * FROM personas WHERE id = ?", (persona_id,)) as cursor:
                persona = Persona.from_row(await cursor.fetchone())
            return SavedPersona(persona, newly_saved=True)


_INSERT = (
    "INSERT INTO personas (guild_id, name, name_key, creator_id, enhancement_id, humalike_persona_id, fields_json,"
    " system_prompt, markdown, sketch, grounding, created_at, updated_at, creator_name)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def insert_with_free_name(
    connection: aiosqlite.Connection,
    guild_id: int,
    name: str,
    row_for: Callable[[str], tuple[object, ...]],
    *,
    table: str = "personas",
    sql: str = _INSERT,
) -> int:
    """Insert under `name`, else "name (2)", "name (3)"...: a clash never loses a persona (or a cast).

    `sql` inserts one row of `table` (unique on guild and `name_key`); `row_for(candidate)` gives its values.
    """
    taken: set[str] = set()
    for attempt in range(1, MAX_NAME_SUFFIX + 1):
        candidate = _numbered(name, attempt)
        if name_key(candidate) in taken:
            continue
        try:
            async with connection.execute(sql, row_for(candidate)) as cursor:
                assert cursor.lastrowid is not None
                return cursor.lastrowid
        except sqlite3.IntegrityError as error:
            if "name_key" not in str(error):
                raise  # another constraint (the enhancement id): not a clash of names
        if attempt == 1:
            # Clashed: find every numbered name already taken in one query, not one insert each.
            keys = [name_key(_numbered(name, later)) for later in range(2, MAX_NAME_SUFFIX + 1)]
            rows = await connection.execute_fetchall(
                f"SELECT name_key FROM {table} WHERE guild_id = ? AND name_key IN ({','.join('?' * len(keys))})",
                (guild_id, *keys),
            )
            taken = {row[0] for row in rows}
    raise RuntimeError(f"no free name for {name!r} after {MAX_NAME_SUFFIX} tries")


def _numbered(name: str, attempt: int) -> str:
    suffix = "" if attempt == 1 else f" ({attempt})"
    return name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix


async def _close_job(connection: aiosqlite.Connection, job_id: int, persona_id: int, now: float) -> None:
    await connection.execute(
        "UPDATE jobs SET state = ?, persona_id = ?, finished_at = COALESCE(finished_at, ?) WHERE id = ?",
        (JobState.SUCCEEDED.value, persona_id, now, job_id),
    )
