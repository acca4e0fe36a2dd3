"""How readily a persona speaks and whether it is NSFW: set with /persona edit, shown on its card."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord

from bot import discord_limits
from bot.clock import wall_clock
from storage.models import MAX_TALKATIVENESS, Persona

if TYPE_CHECKING:
    from bot.core import PersonaBot

# The tag SillyTavern, chub.ai and their peers give adult characters.
NSFW_TAG = "nsfw"


def traits_text(persona: Persona) -> str:
    text = f"{persona.talkativeness}/{MAX_TALKATIVENESS}"
    return f"{text} · 🔞 NSFW: age-restricted channels only" if persona.nsfw else text


def add_traits(embed: discord.Embed, persona: Persona) -> discord.Embed:
    """The persona's talkativeness and NSFW mark as a field of its card, room permitting."""
    if len(embed.fields) < discord_limits.EMBED_FIELDS:
        embed.add_field(name="Talkativeness", value=traits_text(persona), inline=True)
    return embed


async def apply_traits(
    bot: PersonaBot, interaction: discord.Interaction, persona: Persona, *, talkativeness: int | None, nsfw: bool | None
) -> Persona:
    """Save the traits given (the others kept), say so, and let the channels it speaks in follow."""
    updated = await bot.personas.set_traits(
        persona,
        talkativeness=persona.talkativeness if talkativeness is None else talkativeness,
        nsfw=persona.nsfw if nsfw is None else nsfw,
        now=wall_clock(),
    )
    await interaction.response.send_message(
        f"✏️ **{discord.utils.escape_markdown(updated.name)}**: talkativeness {traits_text(updated)}."
    )
    await bot.roleplay.persona_changed(persona, updated, by=interaction.user)  # after the answer: it may post
    return updated


def tagged_nsfw(tags: Iterable[str]) -> bool:
    """Whether a character card's tags mark it NSFW ("nsfw", "NSFW", " Nsfw "): then its persona is too."""
    return any(tag.strip().casefold() == NSFW_TAG for tag in tags)
