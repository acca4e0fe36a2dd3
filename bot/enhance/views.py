"""The Retry button on a failed job's reply, and the form for a long sketch.

The Retry button outlives restarts: the job it retries is in its custom id.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.enhance.request import SKETCH_LIMIT, JobRequest
from bot.ui import Form, PersistentButton
from storage.models import MAX_NAME_LENGTH, JobKind

if TYPE_CHECKING:
    from bot.core import PersonaBot
    from bot.enhance.service import EnhancementService

RETRY_TEMPLATE = r"enhance:retry:(?P<job_id>[0-9]+)"


class RetryButton(PersistentButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=RETRY_TEMPLATE):
    """Starts the failed job afresh; the service decides who may, and starts it once."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Retry", emoji="🔁", style=discord.ButtonStyle.primary, custom_id=f"enhance:retry:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RetryButton:
        return cls(int(match["job_id"]))

    async def press(self, interaction: discord.Interaction[PersonaBot]) -> None:
        await interaction.client.enhancements.retry(interaction, self.job_id)


def retry_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    return view


class SketchModal(Form, title="Enhance a persona"):
    sketch: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Sketch",
        custom_id="sketch",
        style=discord.TextStyle.paragraph,
        placeholder="Sam is a 30-year-old support main. Friendly. Plays Thresh.",
        max_length=SKETCH_LIMIT,
        required=True,
    )
    name: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Name (optional)",
        custom_id="name",
        style=discord.TextStyle.short,
        max_length=MAX_NAME_LENGTH,
        required=False,
    )

    def __init__(self, enhancements: EnhancementService, *, grounding: str, name: str | None) -> None:
        super().__init__()
        self.enhancements = enhancements
        self.grounding = grounding
        if name:
            self.name.default = name

    async def on_submit(self, interaction: discord.Interaction) -> None:
        request = JobRequest(JobKind.ENHANCEMENT, self.sketch.value, self.grounding, self.name.value or None)
        await self.enhancements.submit(interaction, request)
