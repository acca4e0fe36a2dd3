"""Where a persona may speak: an NSFW persona only in age-restricted channels (a thread follows its parent)."""

from __future__ import annotations

import discord

from bot.errors import UserFacingError
from bot.roleplay.webhooks import Speakable
from storage.models import Persona


def _bold(name: str) -> str:
    return f"**{discord.utils.escape_markdown(name)}**"


def may_speak_here(persona: Persona, channel: Speakable) -> bool:
    # discord.py's Thread.is_nsfw() is its parent's flag: a thread is as age-restricted as its channel.
    return not persona.nsfw or channel.is_nsfw()


def check_may_speak_here(persona: Persona, channel: Speakable) -> None:
    """A UserFacingError saying why, when `persona` is NSFW and `channel` is not age-restricted."""
    if not may_speak_here(persona, channel):
        raise UserFacingError(
            f"{_bold(persona.name)} is marked NSFW, so it speaks only in age-restricted channels and their "
            "threads. Use one of those, ask a moderator to mark this channel age-restricted, or unmark the "
            "persona with `/persona edit nsfw:false`."
        )


def nsfw_ended_notice(name: str, *, by_mention: str | None) -> str:
    """What an ordinary channel is told when a persona speaking there can no longer do so."""
    who = f" by {by_mention}" if by_mention else ""
    return f"🔞 {_bold(name)} left: it was marked NSFW{who}, and this channel is not age-restricted."


def channel_no_longer_allows(name: str) -> str:
    return f"🔞 {_bold(name)} left: it is marked NSFW, and this channel is no longer age-restricted."
