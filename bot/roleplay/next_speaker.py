"""/roleplay next: which of a channel's speaking personas a member means, and whether they may call it."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot import discord_limits
from bot.errors import UserFacingError
from bot.roleplay.access import may_direct
from storage.roleplay import GuildRoleplaySettings, Session


def find_speaking(sessions: Sequence[Session], typed: str) -> Session:
    """The session whose persona is named exactly (any case), else the one whose name alone starts
    with, then contains, what was typed; a UserFacingError that says who is here otherwise.

    Only the channel's own sessions are searched: a persona of another channel, or of another
    server, cannot be found from here.
    """
    key = typed.strip().casefold()
    if not sessions:
        raise UserFacingError("No persona is speaking here. Start one with `/roleplay as`.")
    here = ", ".join(f"**{discord.utils.escape_markdown(s.persona_name)}**" for s in sessions)
    if not key:
        raise UserFacingError(f"Name the persona who should speak: {here}.")
    exact = [s for s in sessions if s.persona_name.casefold() == key]
    starting = [s for s in sessions if s.persona_name.casefold().startswith(key)]
    containing = [s for s in sessions if key in s.persona_name.casefold()]
    shown = discord.utils.escape_markdown(typed.strip()[: discord_limits.CHOICE_VALUE])
    for found in (exact, starting, containing):
        if len(found) == 1:
            return found[0]
        if found:
            raise UserFacingError(f"“{shown}” could mean several personas here: {here}. Type more of the name.")
    raise UserFacingError(f"“{shown}” is not speaking here. Speaking here: {here}.")


def check_may_call(member: discord.Member, session: Session, settings: GuildRoleplaySettings) -> None:
    """Whoever started that persona here, or a member who may start roleplay; a UserFacingError otherwise."""
    if may_direct(member, session.started_by, settings):
        return
    name = discord.utils.escape_markdown(session.persona_name)
    raise UserFacingError(
        f"Only whoever started **{name}** here, or a member who may start roleplay, can choose when it speaks."
    )
