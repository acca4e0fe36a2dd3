"""Answering an interaction inside Discord's 3 s when the work before the answer may be slow.

A command whose answer must wait on Discord itself (making a channel's webhook, say) can be held
up: by Discord's per-route limits, or by this process's share of the global limit when several
processes run the bot (bot/discord_share.py). `in_time()` defers the interaction when that work is
not done soon enough, so the member sees "thinking…" rather than "The application did not
respond", and `answer()` then sends the answer however the interaction stands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import discord

T = TypeVar("T")

# Discord's 3 s, less room for the answer itself to travel.
DEFER_AFTER_SECONDS = 1.5


async def in_time(interaction: discord.Interaction, work: Awaitable[T]) -> T:
    """`work`'s result; the interaction is deferred first if the work takes longer than 1.5 s."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER_SECONDS)
        if not done and not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        return await task
    finally:
        task.cancel()  # only if we were cancelled meanwhile: a finished task ignores it


async def answer(interaction: discord.Interaction, content: str, *, ephemeral: bool = False) -> None:
    """Send the answer: as the first response, or in place of "thinking…" after a defer (which was
    public, so it stays so), or as a follow-up to an earlier answer."""
    if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(content=content)
    elif interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=ephemeral)
    else:
        await interaction.response.send_message(content, ephemeral=ephemeral)
