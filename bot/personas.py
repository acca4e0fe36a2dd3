"""Finding a persona from what a member typed: one resolver for every command."""

from __future__ import annotations

import discord
from discord import app_commands

from bot import discord_limits
from bot.errors import UserFacingError
from storage.models import Persona, name_key
from storage.personas import PersonaStore, PersonaSummary


async def resolve_persona(store: PersonaStore, guild_id: int, typed: str) -> Persona:
    """The persona named exactly (ignoring case), else the one whose name alone contains what was typed."""
    text = typed.strip()
    if not text:
        raise UserFacingError("Name a persona: start typing and pick one from the list.")
    exact = await store.get_by_name(guild_id, text)
    if exact is not None:
        return exact
    candidates = await store.search(guild_id, text, limit=6)
    if not candidates:
        raise UserFacingError(
            f"There is no persona called “{text}” in this server. Make one with `/enhance`, "
            "or start typing and pick one from the list."
        )
    starting = [c for c in candidates if name_key(c.name).startswith(name_key(text))]
    if len(starting) == 1 or len(candidates) == 1:
        persona = await store.get((starting or candidates)[0].id)
        assert persona is not None
        return persona
    names = ", ".join(f"“{c.name}”" for c in candidates[:5])
    raise UserFacingError(f"“{text}” could mean {names}. Type more of the name, or pick one from the list.")


def describe_choice(persona: PersonaSummary, creator: str, now: float) -> str:
    """'Sam Okafor · by alice · 3 days ago', within Discord's limit for a choice's name."""
    label = f"{persona.name} · by {creator} · {age(now - persona.created_at)}"
    limit = discord_limits.CHOICE_NAME
    return label if len(label) <= limit else label[: limit - 1] + "…"


def age(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover - unreachable


async def persona_choices(
    store: PersonaStore, interaction: discord.Interaction, typed: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete over this guild's personas: name, creator and age, as many as Discord shows."""
    if interaction.guild is None:
        return []
    now = discord.utils.utcnow().timestamp()
    found = await store.search(interaction.guild.id, typed, limit=discord_limits.AUTOCOMPLETE_CHOICES)
    choices = []
    for persona in found:
        creator = persona.creator_name or "someone"
        choices.append(
            app_commands.Choice(
                name=describe_choice(persona, creator, now), value=persona.name[: discord_limits.CHOICE_VALUE]
            )
        )
    return choices
