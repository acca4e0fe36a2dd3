"""The bases of every button, select and form: who may press them, and one error path.

Slash commands report errors through the command tree; components and forms
would otherwise each handle (or silently drop) their own. Everything here ends
in `report_error`, so a refusal reads the same wherever it is raised and a bug
is logged with a full traceback.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.tree import report_error, tell


class OwnedView(discord.ui.View):
    """Buttons and selects that only the member who asked may use."""

    def __init__(self, *, owner_id: int, refusal: str, timeout: float | None) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.refusal = refusal

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await tell(interaction, self.refusal)
        return False

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        await report_error(interaction, error, where=f"{type(self).__name__} ({type(item).__name__})")


class Form(discord.ui.Modal):
    """A modal whose errors are told like a command's."""

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await report_error(interaction, error, where=f"The form “{self.title}”")


class PersistentButton:
    """Mixed in before `discord.ui.DynamicItem`: a button that works after restarts, its errors reported.

    What it acts on is in its custom id. discord.py only logs an error raised by
    such an item (and takes a failing check as a silent refusal), so `press`
    raises and this reports. Who may press it is decided in `press`, where the
    thing it acts on is at hand.
    """

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self.press(interaction)
        except Exception as error:
            await report_error(interaction, error, where=f"The {type(self).__name__}")

    async def press(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError
