"""The lines a channel sees when a persona speaking there is renamed, edited or deleted."""

from __future__ import annotations

import discord


def _bold(name: str) -> str:
    return f"**{discord.utils.escape_markdown(name)}**"


def change_notice(old_name: str, new_name: str, *, prompt_edited: bool, by_mention: str) -> str | None:
    """What a channel is told when a persona speaking there changes; None when nothing it would notice did."""
    renamed = old_name != new_name
    if renamed and prompt_edited:
        edited = f"their instructions were edited by {by_mention}"
        return f"✏️ {_bold(old_name)} is now called {_bold(new_name)}, and {edited}."
    if renamed:
        return f"✏️ {_bold(old_name)} is now called {_bold(new_name)}."
    if prompt_edited:
        return f"✏️ {_bold(new_name)}'s instructions were edited by {by_mention}."
    return None


def deleted_notice(name: str, *, by_mention: str) -> str:
    return f"👋 {_bold(name)} left: {by_mention} deleted this persona."
