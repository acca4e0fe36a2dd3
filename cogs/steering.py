"""Regenerate and Edit (right-click a persona's message → Apps), and the Stop button on a streaming reply.

The work is `Steering` (bot/roleplay/steering.py); this cog speaks Discord.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import discord_limits
from bot.core import PersonaBot
from bot.roleplay.steering import Steering
from bot.roleplay.stop_button import StopButton
from bot.ui import Form

FORM_TITLE = 45  # Discord's limit on a modal's title


class EditLineForm(Form, title="Edit a reply"):
    text: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="What the persona said",
        custom_id="text",
        style=discord.TextStyle.paragraph,
        max_length=discord_limits.MESSAGE_CONTENT,  # the edited line fits one message
        required=True,
    )

    def __init__(self, steering: Steering, *, message_id: int, persona_name: str, text: str) -> None:
        super().__init__(title=f"Edit {persona_name}'s reply"[:FORM_TITLE])
        self.steering = steering
        self.message_id = message_id
        self.text.default = text[: discord_limits.MESSAGE_CONTENT]

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.steering.edit(interaction, self.message_id, self.text.value)


class SteeringCog(commands.Cog, name="Steering"):
    """Change a persona's reply: write it again, rewrite it, or stop it while it streams."""

    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot
        # Context menus cannot be declared in a cog's body: made here, added to the tree on load.
        self.regenerate_menu = app_commands.ContextMenu(name="Regenerate", callback=self.regenerate)
        self.edit_menu = app_commands.ContextMenu(name="Edit", callback=self.edit)
        for menu in (self.regenerate_menu, self.edit_menu):
            menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.regenerate_menu)
        self.bot.tree.add_command(self.edit_menu)
        self.bot.add_dynamic_items(StopButton)

    async def cog_unload(self) -> None:
        for menu in (self.regenerate_menu, self.edit_menu):
            self.bot.tree.remove_command(menu.name, type=menu.type)
        self.bot.remove_dynamic_items(StopButton)

    async def regenerate(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Write a persona's reply again, from the conversation as it was before it."""
        await self.bot.roleplay.steering.regenerate(interaction, message)

    async def edit(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Rewrite a persona's reply; the persona remembers the new words as its own."""
        steering = self.bot.roleplay.steering
        target, text = await steering.editable(interaction, message)
        form = EditLineForm(steering, message_id=message.id, persona_name=target.session.persona_name, text=text)
        await interaction.response.send_modal(form)


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(SteeringCog(bot))
