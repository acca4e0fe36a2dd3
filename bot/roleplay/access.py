"""Who may start, stop and configure roleplay, and where: pure checks on a member and a server's choices."""

from __future__ import annotations

import discord

from bot.errors import UserFacingError
from bot.roleplay.webhooks import Speakable
from storage.roleplay import GuildRoleplaySettings


def can_manage(member: discord.Member) -> bool:
    """Members with Manage Server decide who may start roleplay, and where."""
    return member.guild_permissions.manage_guild


def may_start(member: discord.Member, settings: GuildRoleplaySettings) -> bool:
    """Manage Server, or the server's roleplay role when it has one."""
    if can_manage(member):
        return True
    return settings.starter_role_id is not None and any(r.id == settings.starter_role_id for r in member.roles)


def may_direct(member: discord.Member, started_by: int, settings: GuildRoleplaySettings) -> bool:
    """Stop a persona, call on it, or Regenerate, Edit and Stop its reply: whoever started its session
    here, or anyone who may start roleplay."""
    return member.id == started_by or may_start(member, settings)


def starter_requirement(settings: GuildRoleplaySettings) -> str:
    """What starting roleplay needs in this server, for a refusal to say."""
    role = f" or the <@&{settings.starter_role_id}> role" if settings.starter_role_id else ""
    return f"the Manage Server permission{role}"


def check_may_start_here(member: discord.Member, channel: Speakable, settings: GuildRoleplaySettings) -> None:
    """A UserFacingError when `member` may not start roleplay, or not in `channel`."""
    if not may_start(member, settings):
        raise UserFacingError(f"Starting roleplay needs {starter_requirement(settings)}.")
    home = channel.parent_id if isinstance(channel, discord.Thread) else channel.id
    if settings.allowed_channels is not None and home not in settings.allowed_channels:
        where = ", ".join(f"<#{c}>" for c in settings.allowed_channels)
        raise UserFacingError(f"Roleplay is not allowed in this channel. It is allowed in {where}.")


def member_and_channel(interaction: discord.Interaction) -> tuple[discord.Member, Speakable]:
    """Who asked and where, when that is a server's text channel or thread; else a UserFacingError."""
    member, channel = interaction.user, interaction.channel
    if not isinstance(member, discord.Member) or not isinstance(channel, discord.TextChannel | discord.Thread):
        raise UserFacingError("Roleplay happens in a server's text channels and threads.")
    return member, channel
