"""/roleplay: a saved persona speaks in a channel, in its own name and voice.

The conversation itself is `RoleplayService` (bot/roleplay/service.py).
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot import discord_limits
from bot.core import PersonaBot
from bot.errors import UserFacingError
from bot.personas import persona_choices, resolve_persona
from bot.roleplay.access import can_manage, member_and_channel
from bot.roleplay.service import bold_names
from bot.roleplay.token_meter import TABLE_TOKENS, usage_line
from storage.roleplay import GuildRoleplaySettings, RoleplayMode

IDLE_CHECK_SECONDS = 60
# The longest /roleplay next nudge: a line of direction, not a second system prompt.
MAX_NUDGE_CHARS = 500
# How often records of old persona messages are pruned (the first run is at start-up).
PRUNE_HOURS = 1
MAX_SPENDERS_SHOWN = 10  # /roleplay status lists today's biggest token spenders, no more
# The highest greeting number offered; cards have a handful of alternates, rarely a dozen.
MAX_GREETING = 100


class Roleplay(commands.GroupCog, group_name="roleplay"):
    """Make saved personas speak in this channel."""

    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.expire_idle.start()
        self.prune.start()

    async def cog_unload(self) -> None:
        self.expire_idle.cancel()
        self.prune.cancel()

    @app_commands.command(name="as")
    @app_commands.guild_only()
    @app_commands.describe(
        persona="The saved persona who should speak here",
        mode="mention: when named (default); always: every message; natural: at its moment; narrator: game master",
        greeting="A persona from a character card: 0 its first message (default), 1 or more an alternate greeting",
    )
    async def start(
        self,
        interaction: discord.Interaction,
        persona: str,
        mode: RoleplayMode = "mention",
        greeting: app_commands.Range[int, 0, MAX_GREETING] | None = None,
    ) -> None:
        """Make a saved persona speak in this channel."""
        if interaction.guild_id is None:
            raise UserFacingError("Roleplay happens in a server's text channels and threads.")
        found = await resolve_persona(self.bot.personas, interaction.guild_id, persona)
        await self.bot.roleplay.begin(interaction, [found], mode, greeting=greeting)

    @start.autocomplete("persona")
    async def _persona_autocomplete(
        self, interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        return await persona_choices(self.bot.personas, interaction, typed)

    @app_commands.command(name="stop")
    @app_commands.guild_only()
    @app_commands.describe(persona="Who should stop speaking here; leave out to end every persona here")
    async def stop(self, interaction: discord.Interaction, persona: str | None = None) -> None:
        """End one persona, or all of them, in this channel."""
        member, channel = member_and_channel(interaction)
        chosen = await resolve_persona(self.bot.personas, member.guild.id, persona) if persona is not None else None
        ended = await self.bot.roleplay.stop(interaction, chosen)
        await interaction.response.send_message(f"👋 {bold_names(ended)} left {channel.mention}.")

    @stop.autocomplete("persona")
    async def _stop_autocomplete(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return self._speaking_here(interaction, typed)

    @app_commands.command(name="next")
    @app_commands.guild_only()
    @app_commands.describe(
        persona="Who should speak now: a persona speaking in this channel",
        nudge="What should happen in their line, e.g. “the innkeeper notices the stolen ring”",
    )
    async def next_turn(
        self,
        interaction: discord.Interaction,
        persona: str,
        nudge: app_commands.Range[str, 1, MAX_NUDGE_CHARS] | None = None,
    ) -> None:
        """Make one persona here speak now, nudged toward what should happen."""
        await self.bot.roleplay.speak_next(interaction, persona, nudge or "")

    @next_turn.autocomplete("persona")
    async def _next_autocomplete(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return self._speaking_here(interaction, typed)

    def _speaking_here(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        """The personas speaking in this channel whose name contains what was typed."""
        key = typed.casefold()
        names = [s.persona_name for s in self.bot.roleplay.in_channel(interaction.channel_id or 0)]
        return [
            app_commands.Choice(name=name[: discord_limits.CHOICE_NAME], value=name[: discord_limits.CHOICE_VALUE])
            for name in names
            if key in name.casefold()
        ][: discord_limits.AUTOCOMPLETE_CHOICES]

    @app_commands.command(name="status")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction) -> None:
        """Who is speaking in this channel, since when, in which mode, started by whom."""
        _, channel = member_and_channel(interaction)
        active = self.bot.roleplay.in_channel(channel.id)
        tokens = await self._tokens_today(channel.guild.id)
        if not active:
            await interaction.response.send_message(
                "\n".join(["No persona is speaking here. Start one with `/roleplay as`.", *tokens]), ephemeral=True
            )
            return
        lines = [
            f"• **{discord.utils.escape_markdown(s.persona_name)}**: since <t:{int(s.started_at)}:R>, "
            f"{s.mode} mode, started by <@{s.started_by}>"
            for s in active
        ]
        lines += tokens
        lines += await self._natural_cost(channel.guild.id)
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    async def _tokens_today(self, guild_id: int) -> list[str]:
        """This server's chat-model tokens today, against its cap, and who spent them (most first)."""
        meter = self.bot.roleplay.meter
        if meter is None:
            return []
        lines = [usage_line(await meter.spent_today(guild_id), meter.cap)]
        spent = await meter.by_persona(guild_id)
        for persona_id, tokens in list(spent.items())[:MAX_SPENDERS_SHOWN]:
            persona = await self.bot.personas.get(persona_id) if persona_id != TABLE_TOKENS else None
            name = "recaps" if persona_id == TABLE_TOKENS else persona.name if persona else "a deleted persona"
            lines.append(f"  ◦ {discord.utils.escape_markdown(name)}: {tokens:,}")
        if len(spent) > MAX_SPENDERS_SHOWN:
            lines.append(f"  ◦ and {len(spent) - MAX_SPENDERS_SHOWN} more")
        return lines

    async def _natural_cost(self, guild_id: int) -> list[str]:
        """Today's billable turn-taking calls of this server, per persona, against its cap."""
        natural = self.bot.roleplay.natural
        if natural is None:
            return []
        usage, cap = await natural.budget.spent_today(guild_id)
        if not usage:
            return []
        names = {}
        for persona_id in usage:  # a few personas at most: the ones that used natural mode today
            persona = await self.bot.personas.get(persona_id)
            names[persona_id] = persona.name if persona is not None else "a deleted persona"
        spent = sum(usage.values())
        lines = [f"Natural mode today (UTC): {spent} of {cap} billable turn-taking calls in this server"]
        lines += [
            f"  ◦ {discord.utils.escape_markdown(names[persona_id])}: {calls}"
            for persona_id, calls in sorted(usage.items(), key=lambda item: -item[1])
        ]
        return lines

    @app_commands.command(name="role")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(role="Members with this role may start roleplay; leave out for Manage Server only")
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        """Choose who may start roleplay in this server (admins)."""
        member, _ = member_and_channel(interaction)
        if not can_manage(member):
            raise UserFacingError("Only members with Manage Server can change who may start roleplay.")
        store = self.bot.roleplay_store
        current = await store.guild_settings(member.guild.id)
        await store.save_guild_settings(
            member.guild.id, GuildRoleplaySettings(role.id if role else None, current.allowed_channels)
        )
        who = f"members with {role.mention} (and Manage Server)" if role else "members with Manage Server"
        await interaction.response.send_message(f"Roleplay can now be started by {who}.", ephemeral=True)

    @app_commands.command(name="channel")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(
        channel="A text channel", allowed="Allow roleplay there (once any channel is allowed, only those are)"
    )
    async def channel(self, interaction: discord.Interaction, channel: discord.TextChannel, allowed: bool) -> None:
        """Choose the channels roleplay may happen in (admins)."""
        member, _ = member_and_channel(interaction)
        if not can_manage(member):
            raise UserFacingError("Only members with Manage Server can choose roleplay channels.")
        store = self.bot.roleplay_store
        current = await store.guild_settings(member.guild.id)
        channels = set(current.allowed_channels or ())
        (channels.add if allowed else channels.discard)(channel.id)
        await store.save_guild_settings(
            member.guild.id, GuildRoleplaySettings(current.starter_role_id, tuple(sorted(channels)) or None)
        )
        where = ", ".join(f"<#{c}>" for c in sorted(channels)) if channels else "every channel"
        await interaction.response.send_message(f"Roleplay is now allowed in {where}.", ephemeral=True)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        await self.bot.roleplay.hear(message)

    @tasks.loop(seconds=IDLE_CHECK_SECONDS)
    async def expire_idle(self) -> None:
        await self.bot.roleplay.expire_idle()

    @tasks.loop(hours=PRUNE_HOURS)
    async def prune(self) -> None:
        await self.bot.roleplay.prune()


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Roleplay(bot))
