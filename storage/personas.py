"""Saved personas, named uniquely per guild."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database, Transaction
from storage.errors import IntegrityError
from storage.models import MAX_TALKATIVENESS, JobState, NewPersona, Persona, name_key
from storage.names import insert_with_free_name, name_patterns


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

    async def count(self) -> int:
        """How many personas there are, in every guild."""
        row = await self._db.fetch_one("SELECT COUNT(*) FROM personas")
        return row[0] if row else 0

    async def name_taken(self, guild_id: int, name: str) -> bool:
        return await self.get_by_name(guild_id, name) is not None

    async def search(self, guild_id: int, typed: str, *, limit: int = 25) -> list[PersonaSummary]:
        """This guild's personas whose name starts with, then contains, what was typed; newest first."""
        contains, starts_with = name_patterns(typed)
        rows = await self._db.fetch_all(
            "SELECT id, name, creator_id, creator_name, created_at FROM personas"
            " WHERE guild_id = ? AND name_key LIKE ? ESCAPE '\\'"
            " ORDER BY (name_key LIKE ? ESCAPE '\\') DESC, created_at DESC LIMIT ?",
            (guild_id, contains, starts_with, limit),
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
        except IntegrityError:
            raise NameTaken(name) from None
        updated = await self.get(persona.id)
        assert updated is not None
        return updated

    async def set_traits(self, persona: Persona, *, talkativeness: int, nsfw: bool, now: float) -> Persona:
        """How readily it speaks (0-100) and whether it is NSFW; the persona as saved."""
        if not 0 <= talkativeness <= MAX_TALKATIVENESS:
            raise ValueError(f"talkativeness must be 0 to {MAX_TALKATIVENESS}, not {talkativeness}")
        await self._db.write(
            "UPDATE personas SET talkativeness = ?, nsfw = ?, updated_at = ? WHERE id = ?",
            (talkativeness, int(nsfw), now, persona.id),
        )
        updated = await self.get(persona.id)
        assert updated is not None
        return updated

    async def delete(self, persona_id: int) -> bool:
        return await self._db.write("DELETE FROM personas WHERE id = ?", (persona_id,)) > 0

    async def save_imported(self, persona: NewPersona) -> Persona:
        """Save a persona that came from a card file, with a numbered name if the name is taken."""
        async with self._db.transaction() as transaction:
            persona_id = await insert_persona(transaction, persona)
        saved = await self.get(persona_id)
        assert saved is not None
        return saved

    async def save_enhanced(self, job_id: int, persona: NewPersona) -> SavedPersona:
        """Save the persona of a succeeded job and close the job, in one transaction.

        Keyed by the enhancement id, so a second call (a restart, a duplicate
        poll) finds the first save instead of making another.
        """
        async with self._db.transaction() as transaction:
            await transaction.lock(f"enhancement:{persona.enhancement_id}")  # two processes polling it at once
            existing = await transaction.fetch_one(
                "SELECT * FROM personas WHERE enhancement_id = ?", (persona.enhancement_id,)
            )
            if existing is not None:
                first = Persona.from_row(existing)
                await _close_job(transaction, job_id, first.id, persona.created_at)
                return SavedPersona(first, newly_saved=False)
            persona_id = await insert_persona(transaction, persona)
            await _close_job(transaction, job_id, persona_id, persona.created_at)
            saved = await transaction.fetch_one("SELECT * FROM personas WHERE id = ?", (persona_id,))
            assert saved is not None  # inserted above, in this transaction
            return SavedPersona(Persona.from_row(saved), newly_saved=True)


_INSERT = (
    "INSERT INTO personas (guild_id, name, name_key, creator_id, creator_name, enhancement_id, humalike_persona_id,"
    " fields_json, system_prompt, markdown, sketch, grounding, created_at, updated_at, origin, nsfw, card_json)"
    " VALUES (:guild_id, :name, :name_key, :creator_id, :creator_name, :enhancement_id, :humalike_persona_id,"
    " :fields_json, :system_prompt, :markdown, :sketch, :grounding, :created_at, :updated_at, :origin, :nsfw,"
    " :card_json) RETURNING id"
)


async def insert_persona(transaction: Transaction, persona: NewPersona) -> int:
    """Insert one persona inside the caller's transaction, its name numbered on a clash; its id."""
    return await insert_with_free_name(
        transaction, table="personas", insert=_INSERT, name=persona.name, values=persona.row()
    )


async def _close_job(transaction: Transaction, job_id: int, persona_id: int, now: float) -> None:
    await transaction.execute(
        "UPDATE jobs SET state = ?, persona_id = ?, finished_at = COALESCE(finished_at, ?) WHERE id = ?",
        (JobState.SUCCEEDED.value, persona_id, now, job_id),
    )
