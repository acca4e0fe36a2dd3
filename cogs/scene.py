"""/scene: what the table shares. The channel's scene, the narrator's cue, recaps and transcripts.

Every persona in a channel sees its scene and its last recap in its instructions (RoleplayService
`_stage`); both are stored per channel (storage/scenes.py) and outlive restarts.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import wall_clock
from bot.core import PersonaBot
from bot.errors import UserFacingError
from bot.roleplay.access import may_start, member_and_channel, starter_requirement
from bot.roleplay.export import EXPORT_MAX_MESSAGES, export_filename, session_markdown
from bot.roleplay.narrator import MAX_CUE_CHARS
from bot.roleplay.recaps import RECAP_MAX_MESSAGES, write_recap
from bot.roleplay.scenes import MAX_SCENE_CHARS, preview
from bot.roleplay.service import NO_MODEL
from bot.roleplay.session_log import SessionLog, read_session, session_start
from bot.roleplay.webhooks import Speakable
from bot.ui import Form

NO_SESSION = "No persona has spoken in this channel yet, so there is no session to {what}."


class SceneForm(Form, title="Set the scene"):
    text: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="The scene",
        custom_id="scene",
        style=discord.TextStyle.paragraph,
        placeholder="Where we are, what is happening, who is present.",
        max_length=MAX_SCENE_CHARS,
        required=True,
    )

    def __init__(self, cog: Scene, current: str) -> None:
        super().__init__()
        self.cog = cog
        if current:
            self.text.default = current

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.apply_scene(interaction, self.text.value)


class Scene(commands.GroupCog, group_name="scene"):
    """The channel's scene, its narrator, recaps and transcripts."""

    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot

    async def _check_may_change(self, member: discord.Member, doing: str) -> None:
        """Who may start roleplay may change what every persona in the channel is told."""
        settings = await self.bot.roleplay_store.guild_settings(member.guild.id)
        if not may_start(member, settings):
            raise UserFacingError(
                f"Only members who may start roleplay can {doing}: that needs {starter_requirement(settings)}."
            )

    @app_commands.command(name="set")
    @app_commands.guild_only()
    @app_commands.describe(
        text=f"Where we are, what happens, who is here (≤ {MAX_SCENE_CHARS:,} chars); leave out for a form"
    )
    async def set_scene(
        self, interaction: discord.Interaction, text: app_commands.Range[str, 1, MAX_SCENE_CHARS] | None = None
    ) -> None:
        """Set this channel's scene: every persona here sees it."""
        member, channel = member_and_channel(interaction)
        await self._check_may_change(member, "set the scene")
        if text is None:
            current = await self.bot.roleplay.scenes.scene(member.guild.id, channel.id)
            await interaction.response.send_modal(SceneForm(self, current.text if current else ""))
            return
        await self.apply_scene(interaction, text)

    async def apply_scene(self, interaction: discord.Interaction, text: str) -> None:
        """Store the scene and tell the channel, pinging nobody."""
        member, channel = member_and_channel(interaction)
        await self._check_may_change(member, "set the scene")  # again: a form may be sent minutes later
        text = text.strip()
        if not text:
            raise UserFacingError("A scene needs some words: where we are, what is happening, who is present.")
        if len(text) > MAX_SCENE_CHARS:
            raise UserFacingError(f"A scene can be up to {MAX_SCENE_CHARS:,} characters; this one is {len(text):,}.")
        scenes = self.bot.roleplay.scenes
        before = await scenes.scene(member.guild.id, channel.id)
        await scenes.set_scene(
            guild_id=member.guild.id, channel_id=channel.id, text=text, set_by=member.id, now=wall_clock()
        )
        verb = "changed" if before is not None else "set"
        await interaction.response.send_message(
            f"🎬 Scene {verb} by {member.mention}: {discord.utils.escape_markdown(preview(text))}"
        )

    @app_commands.command(name="show")
    @app_commands.guild_only()
    async def show(self, interaction: discord.Interaction) -> None:
        """This channel's scene and its last recap, for you only."""
        member, channel = member_and_channel(interaction)
        scenes = self.bot.roleplay.scenes
        scene = await scenes.scene(member.guild.id, channel.id)
        recap = await scenes.recap(member.guild.id, channel.id)
        if scene is None and recap is None:
            await interaction.response.send_message("No scene is set here. Set one with `/scene set`.", ephemeral=True)
            return
        parts = []
        if scene is not None:
            parts.append(f"**The scene** (set by <@{scene.set_by}> <t:{int(scene.set_at)}:R>)\n{scene.text}")
        else:
            parts.append("No scene is set here. Set one with `/scene set`.")
        if recap is not None:
            parts.append(f"**Previously on…** (<t:{int(recap.written_at)}:R>)\n{recap.text}")
        embed = discord.Embed(title=f"#{channel.name}", description="\n\n".join(parts))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="clear")
    @app_commands.guild_only()
    @app_commands.describe(what="The scene, the recap the next session starts with, or both (default)")
    async def clear(self, interaction: discord.Interaction, what: Literal["scene", "recap", "both"] = "both") -> None:
        """Clear this channel's scene and/or its recap."""
        member, channel = member_and_channel(interaction)
        await self._check_may_change(member, "clear the scene")
        had_scene, had_recap = await self.bot.roleplay.scenes.clear(
            member.guild.id, channel.id, scene=what != "recap", recap=what != "scene"
        )
        cleared = " and ".join(name for name, had in (("Scene", had_scene), ("recap", had_recap)) if had)
        if not cleared:
            raise UserFacingError(f"There is no {'scene or recap' if what == 'both' else what} here to clear.")
        cleared = cleared[0].upper() + cleared[1:]
        await interaction.response.send_message(f"🎬 {cleared} cleared by {member.mention}.")

    @app_commands.command(name="recap")
    @app_commands.guild_only()
    async def recap(self, interaction: discord.Interaction) -> None:
        """A short "previously on…" of this channel's session, posted and kept for the next session."""
        member, channel = member_and_channel(interaction)
        await self._check_may_change(member, "write the recap")
        chat = self.bot.roleplay.chat
        if chat is None:
            raise UserFacingError(NO_MODEL)
        since = await self._session_start(member.guild.id, channel, "recap")
        await interaction.response.defer(thinking=True)  # reading the channel and the model take seconds
        log = await self._read(channel, since, RECAP_MAX_MESSAGES)
        if not log.lines:
            raise UserFacingError("Nothing has been said in this channel's session yet, so there is nothing to recap.")
        scenes = self.bot.roleplay.scenes
        scene = await scenes.scene(member.guild.id, channel.id)
        previous = await scenes.recap(member.guild.id, channel.id)
        text = await write_recap(
            chat,
            log.lines,
            scene=scene.text if scene else "",
            previous=previous.text if previous else "",
            meter=self.bot.roleplay.meter,
            guild_id=member.guild.id,
        )
        await scenes.set_recap(
            guild_id=member.guild.id, channel_id=channel.id, text=text, written_by=member.id, now=wall_clock()
        )
        await interaction.edit_original_response(content=f"📜 **Previously in {channel.mention}…**\n{text}")

    @app_commands.command(name="export")
    @app_commands.guild_only()
    async def export(self, interaction: discord.Interaction) -> None:
        """This channel's session as a Markdown file: who said what and when (only you see it)."""
        member, channel = member_and_channel(interaction)
        if not channel.permissions_for(member).read_message_history:
            raise UserFacingError("Exporting this channel's session needs the Read Message History permission here.")
        since = await self._session_start(member.guild.id, channel, "export")
        await interaction.response.defer(ephemeral=True, thinking=True)  # up to ten pages of history
        log = await self._read(channel, since, EXPORT_MAX_MESSAGES)
        scenes = self.bot.roleplay.scenes
        scene = await scenes.scene(member.guild.id, channel.id)
        recap = await scenes.recap(member.guild.id, channel.id)
        markdown = session_markdown(
            log,
            guild_name=member.guild.name,
            channel_name=getattr(channel, "name", "channel"),
            scene=scene.text if scene else "",
            recap=recap.text if recap else "",
        )
        file = discord.File(io.BytesIO(markdown.encode()), filename=export_filename(channel.name, since))
        await interaction.edit_original_response(
            content=f"📄 The session in {channel.mention}: {len(log.lines)} messages.", attachments=[file]
        )

    @app_commands.command(name="narrate")
    @app_commands.guild_only()
    @app_commands.describe(what="What should happen next (leave out to let the narrator go on)")
    async def narrate(
        self, interaction: discord.Interaction, what: app_commands.Range[str, 1, MAX_CUE_CHARS] | None = None
    ) -> None:
        """Ask this channel's narrator to describe what happens next."""
        await self.bot.roleplay.narrate(interaction, what or "")

    async def _session_start(self, guild_id: int, channel: Speakable, what: str) -> float:
        since = session_start(await self.bot.scene_store.session_spans(guild_id, channel.id))
        if since is None:
            raise UserFacingError(NO_SESSION.format(what=what))
        return since

    async def _read(self, channel: Speakable, since: float, limit: int) -> SessionLog:
        me = self.bot.user
        return await read_session(
            channel, since=since, limit=limit, store=self.bot.roleplay_store, bot_user_id=me.id if me else 0
        )


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Scene(bot))
