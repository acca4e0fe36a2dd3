"""The one error path for application commands."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.answering import answer
from bot.errors import UserFacingError
from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on my side and it has been logged. Please try again in a moment."
DATABASE_AWAY = "My database is not answering right now, so nothing was done. Please try again in a minute."


async def tell(interaction: discord.Interaction, message: str) -> None:
    """Answer ephemerally, whether or not the interaction was answered before; after a "thinking…"
    defer, in its place, so it never stays thinking."""
    await answer(interaction, message, ephemeral=True)


def explain(error: Exception) -> str | None:
    """The sentence for an expected failure; None for a bug."""
    cause = getattr(error, "original", error)  # what a command or a component raised
    if isinstance(cause, DatabaseUnavailable):
        log.warning("The database is unreachable: %s", cause)
        return DATABASE_AWAY
    if isinstance(error, UserFacingError):
        return error.message
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in a server channel, not in direct messages."
    if isinstance(error, app_commands.MissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"You need the {missing} permission to do that."
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"I need the {missing} permission here to do that. Ask a server admin to grant it."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


async def report_error(interaction: discord.Interaction, error: Exception, *, where: str) -> None:
    """Tell the user what went wrong; log the whole of anything unexpected."""
    message = explain(error)
    if message is None:
        log.error("%s failed", where, exc_info=error)
        message = UNEXPECTED
    try:
        await tell(interaction, message)
    except discord.HTTPException:
        log.warning("Could not tell the user about an error in %s", where, exc_info=True)


class BotCommandTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        command = interaction.command.qualified_name if interaction.command else "unknown"
        await report_error(interaction, error, where=f"Command /{command}")
