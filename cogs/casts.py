"""/cast: a whole cast of personas from one prompt, and all of them in a channel at once."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import discord_limits
from bot.core import PersonaBot
from bot.enhance.request import SKETCH_LIMIT, JobRequest
from bot.errors import UserFacingError
from storage.models import MAX_NAME_LENGTH, JobKind
from storage.roleplay import RoleplayMode

# Why ten: a game-night table rarely seats more; generation time and cost grow with the count; and
# Discord lets a channel's webhooks post about 30 messages a minute, which more voices would exhaust.
MAX_CAST_SIZE = 10


class Casts(commands.GroupCog, group_name="cast"):
    """Generate casts of characters and bring them to a channel."""

    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot

    @app_commands.command(name="generate")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="Who to generate, e.g. “five regulars of a fantasy tavern”",
        count=f"How many personas (1 to {MAX_CAST_SIZE})",
        grounding="How much real-world lookup Humalike does first (research is slowest)",
        name="The cast's name; by default the start of the prompt",
    )
    async def generate(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, SKETCH_LIMIT],
        count: app_commands.Range[int, 1, MAX_CAST_SIZE],
        grounding: Literal["off", "web", "research"] = "off",
        name: app_commands.Range[str, 1, MAX_NAME_LENGTH] | None = None,
    ) -> None:
        """Generate a whole cast of personas from one prompt."""
        request = JobRequest(JobKind.POPULATION, prompt, grounding, name, size=count)
        await self.bot.enhancements.submit(interaction, request)

    @app_commands.command(name="roleplay")
    @app_commands.guild_only()
    @app_commands.describe(cast="The cast to bring in", mode="mention (default) or always, as for /roleplay as")
    async def roleplay(self, interaction: discord.Interaction, cast: str, mode: RoleplayMode = "mention") -> None:
        """Every member of a cast takes this channel at once."""
        if interaction.guild_id is None:
            raise UserFacingError("Casts belong to a server: use this in one of its channels.")
        found = await self.bot.casts.by_name(interaction.guild_id, cast)
        if found is None:
            matches = await self.bot.casts.search(interaction.guild_id, cast, limit=2)
            if len(matches) != 1:
                raise UserFacingError(
                    f"There is no cast called “{cast}” in this server. Make one with `/cast generate`."
                )
            found = await self.bot.casts.by_name(interaction.guild_id, matches[0][0])
        assert found is not None
        if not found.members:
            raise UserFacingError(f"Every member of “{found.name}” has been deleted.")
        await self.bot.roleplay.begin(interaction, list(found.members), mode)

    @roleplay.autocomplete("cast")
    async def _cast_autocomplete(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        return [
            app_commands.Choice(
                name=f"{name} · {size} personas"[: discord_limits.CHOICE_NAME],
                value=name[: discord_limits.CHOICE_VALUE],
            )
            for name, size in await self.bot.casts.search(interaction.guild_id, typed)
        ]


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Casts(bot))
