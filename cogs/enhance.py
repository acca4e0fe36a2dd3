"""/enhance: a short sketch becomes a full Humalike persona, its reply kept current while it is made.

What happens next is `EnhancementService.submit` (bot/enhance/service.py).
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import PersonaBot
from bot.enhance.request import SKETCH_LIMIT, JobRequest
from bot.enhance.views import RetryButton, SketchModal
from storage.models import MAX_NAME_LENGTH, JobKind


class Enhance(commands.Cog):
    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RetryButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RetryButton)

    @app_commands.command(name="enhance")
    @app_commands.guild_only()
    @app_commands.describe(
        sketch="A short description of the character; leave it out to write a long one in a form",
        grounding="How much real-world lookup Humalike does first (research is slowest)",
        name="The persona's name; by default it comes from the result or the sketch",
    )
    async def enhance(
        self,
        interaction: discord.Interaction,
        sketch: app_commands.Range[str, 1, SKETCH_LIMIT] | None = None,
        grounding: Literal["off", "web", "research"] = "off",
        name: app_commands.Range[str, 1, MAX_NAME_LENGTH] | None = None,
    ) -> None:
        """Turn a short character sketch into a full Humalike persona."""
        if sketch is None:
            await interaction.response.send_modal(SketchModal(self.bot.enhancements, grounding=grounding, name=name))
            return
        await self.bot.enhancements.submit(interaction, JobRequest(JobKind.ENHANCEMENT, sketch, grounding, name))


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Enhance(bot))
