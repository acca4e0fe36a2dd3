"""The Stop button a persona's message carries while its reply streams.

A dynamic item: its custom id names the session, and the message it is on names the reply, so a
button left over by a crash still answers after a restart ("that reply already finished").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.ui import PersistentButton

if TYPE_CHECKING:
    from bot.core import PersonaBot

STOP_TEMPLATE = r"roleplay:stop:(?P<session_id>[0-9]+)"


class StopButton(PersistentButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=STOP_TEMPLATE):
    """Cuts the streaming reply it is on where it is; who may is decided by the steering service."""

    def __init__(self, session_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Stop", emoji="⏹️", style=discord.ButtonStyle.secondary, custom_id=f"roleplay:stop:{session_id}"
            )
        )
        self.session_id = session_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StopButton:
        return cls(int(match["session_id"]))

    async def press(self, interaction: discord.Interaction[PersonaBot]) -> None:
        await interaction.client.roleplay.steering.stop(interaction)


def stop_view(session_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(StopButton(session_id))
    return view


def no_buttons() -> discord.ui.View:
    """Edited onto a message, takes its buttons away (an edit without a view leaves them as they are)."""
    return discord.ui.View(timeout=None)
