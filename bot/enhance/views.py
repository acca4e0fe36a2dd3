"""Components on a job's reply. The Retry button outlives restarts: its job id is in its custom id."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord
from discord import app_commands

from bot.tree import report_error

RETRY_TEMPLATE = r"enhance:retry:(?P<job_id>[0-9]+)"
SKETCH_LIMIT = 4000  # a modal paragraph's limit, used for the slash option too


class RetryHandler(Protocol):
    async def retry(self, interaction: discord.Interaction, job_id: int) -> None: ...


class RetryButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=RETRY_TEMPLATE):
    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Retry",
                emoji="🔁",
                style=discord.ButtonStyle.primary,
                custom_id=f"enhance:retry:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> RetryButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        handler: RetryHandler | None = interaction.client.get_cog("Enhance")  # type: ignore[attr-defined]
        if handler is None:
            await interaction.response.send_message("Enhancing is unavailable right now.", ephemeral=True)
            return
        await handler.retry(interaction, self.job_id)


def retry_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    return view


class SketchModal(discord.ui.Modal, title="Enhance a persona"):
    sketch: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Sketch",
        custom_id="sketch",
        style=discord.TextStyle.paragraph,
        placeholder="Sam is a 30-year-old support main. Friendly. Plays Thresh.",
        max_length=SKETCH_LIMIT,
        required=True,
    )
    name: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Name (optional)", custom_id="name", style=discord.TextStyle.short, max_length=80, required=False
    )

    def __init__(self, on_sketch: Any, *, name: str | None) -> None:
        super().__init__()
        self._on_sketch = on_sketch
        if name:
            self.name.default = name

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._on_sketch(interaction, self.sketch.value, self.name.value or None)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        # The same path as a slash command's errors: refusals are told, bugs are logged.
        tree = interaction.client.tree  # type: ignore[attr-defined]
        if isinstance(error, app_commands.AppCommandError):
            await tree.on_error(interaction, error)
        else:
            await report_error(interaction, error, where="The /enhance form")
