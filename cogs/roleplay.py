"""/roleplay: a saved persona speaks in a channel, in its own name and voice."""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.chat.client import ChatModel
from bot.clock import wall_clock
from bot.core import PersonaBot
from bot.errors import UserFacingError
from bot.personas import persona_choices, resolve_persona
from bot.roleplay.addressing import ActivePersona, addressed
from bot.roleplay.backfill import read_back
from bot.roleplay.history import ChannelLine
from bot.roleplay.speaker import HistoryBounds, Speaker
from bot.roleplay.transcript import Transcripts
from bot.roleplay.turns import TurnQueue
from bot.roleplay.webhooks import NO_MENTIONS, Speakable, WebhookPool, check_can_speak
from storage.models import Persona
from storage.roleplay import AlreadyActive, GuildRoleplaySettings, RoleplayStore, Session, TooManyActive

log = logging.getLogger(__name__)

NO_MODEL = (
    "No chat model is set up, so personas cannot speak yet. Whoever runs the bot sets `CHAT_MODEL_BASE_URL`, "
    "`CHAT_MODEL_NAME` (and `CHAT_MODEL_API_KEY` if the server needs one) in its `.env` and restarts it; any "
    "OpenAI-compatible server works (OpenAI, Ollama, vLLM, LM Studio, llama.cpp, OpenRouter)."
)


def can_manage(member: discord.Member) -> bool:
    return member.guild_permissions.manage_guild


class Roleplay(commands.GroupCog, group_name="roleplay"):
    """Make saved personas speak in this channel."""

    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.store = RoleplayStore(bot.database)
        self.webhooks = WebhookPool(bot, self.store)
        self.transcripts = Transcripts()
        self.turns = TurnQueue(settings.roleplay_channel_cooldown_seconds)
        self.chat: ChatModel | None = None
        if settings.chat_model_configured:
            assert settings.chat_model_base_url and settings.chat_model_name
            key = settings.chat_model_api_key.get_secret_value() if settings.chat_model_api_key else None
            self.chat = ChatModel(
                settings.chat_model_base_url,
                settings.chat_model_name,
                key,
                timeout=settings.chat_model_timeout_seconds,
            )
        self.speaker: Speaker | None = None
        if self.chat is not None:
            self.speaker = Speaker(
                chat=self.chat,
                webhooks=self.webhooks,
                store=self.store,
                transcripts=self.transcripts,
                bounds=HistoryBounds(settings.roleplay_history_messages, settings.roleplay_history_chars),
                max_tokens=settings.chat_model_max_tokens,
            )
        # Active sessions by channel, and their personas: read on every message, so kept in memory.
        self.sessions: dict[int, list[Session]] = {}
        self.personas: dict[int, Persona] = {}
        # Channel id -> when someone last spoke there; a session idles when its channel does.
        self.activity: dict[int, float] = {}
        # Channels whose sessions outlived a restart: their transcript is read back from Discord once.
        self.to_read_back: set[int] = set()

    async def cog_load(self) -> None:
        for session in await self.store.active():
            await self._remember_session(session)
            self.to_read_back.add(session.channel_id)
        self.expire_idle.start()

    async def cog_unload(self) -> None:
        self.expire_idle.cancel()
        await self.turns.stop()
        if self.chat is not None:
            await self.chat.close()

    async def _remember_session(self, session: Session) -> None:
        self.sessions.setdefault(session.channel_id, []).append(session)
        self.activity[session.channel_id] = max(self.activity.get(session.channel_id, 0.0), session.last_activity_at)
        if session.persona_id not in self.personas:
            persona = await self.bot.personas.get(session.persona_id)
            if persona is not None:
                self.personas[session.persona_id] = persona

    def _forget_session(self, session: Session) -> None:
        remaining = [s for s in self.sessions.get(session.channel_id, []) if s.id != session.id]
        if remaining:
            self.sessions[session.channel_id] = remaining
        else:
            self.sessions.pop(session.channel_id, None)
            self.transcripts.forget(session.channel_id)

    # --- Commands ------------------------------------------------------------------------------

    @app_commands.command(name="as")
    @app_commands.guild_only()
    @app_commands.describe(
        persona="The saved persona who should speak here",
        mode="mention: answers when named or replied to (default); always: answers every message",
    )
    async def start(
        self,
        interaction: discord.Interaction,
        persona: str,
        mode: Literal["mention", "always"] = "mention",
    ) -> None:
        """Make a saved persona speak in this channel."""
        if interaction.guild_id is None:
            raise UserFacingError("Roleplay happens in a server's text channels and threads.")
        found = await resolve_persona(self.bot.personas, interaction.guild_id, persona)
        await self.begin(interaction, found, mode)

    async def begin(self, interaction: discord.Interaction, found: Persona, mode: str) -> None:
        """Start `found` speaking where `interaction` happened (also the persona card's button)."""
        await self.begin_many(interaction, [found], mode)

    async def begin_many(self, interaction: discord.Interaction, personas: list[Persona], mode: str) -> None:
        """Start every one of `personas` speaking here (a cast at once), or none of them."""
        if self.speaker is None:
            raise UserFacingError(NO_MODEL)
        member, channel = self._member_and_channel(interaction)
        if any(persona.guild_id != member.guild.id for persona in personas):
            raise UserFacingError("That persona belongs to another server.")
        guild_settings = await self.store.guild_settings(member.guild.id)
        self._check_may_start(member, channel, guild_settings)
        check_can_speak(channel, member.guild.me)
        await self.webhooks.get(channel)  # made now, so a refusal is told now and not at the first word
        here = {s.persona_id for s in self.sessions.get(channel.id, [])}
        joining = [persona for persona in personas if persona.id not in here]
        if not joining:
            names = " and ".join(persona.name for persona in personas)
            raise UserFacingError(f"{names} {'is' if len(personas) == 1 else 'are'} already speaking here.")
        active = len(await self.store.active(guild_id=member.guild.id))
        limit = self.bot.settings.roleplay_max_active_per_guild
        if active + len(joining) > limit:
            raise UserFacingError(
                f"{active} personas are already active in this server and {len(joining)} more would pass the "
                f"limit of {limit}. End some with `/roleplay stop` first."
            )
        sessions = []
        for persona in joining:
            try:
                session = await self.store.start(
                    guild_id=member.guild.id,
                    channel_id=channel.id,
                    persona_id=persona.id,
                    mode=mode,
                    started_by=member.id,
                    now=wall_clock(),
                    max_active_in_guild=limit,
                )
            except (AlreadyActive, TooManyActive):
                continue  # started meanwhile by someone else, or the last slot was taken: not an error here
            await self._remember_session(session)
            sessions.append(session)
        names = ", ".join(f"**{discord.utils.escape_markdown(s.persona_name)}**" for s in sessions)
        talk = "Say a name or reply to one of them to talk" if mode == "mention" else "They answer every message here"
        verb = "joins" if len(sessions) == 1 else "join"
        await interaction.response.send_message(
            f"🎭 {names} {verb} {channel.mention}. {talk}; `/roleplay stop` ends it.",
            allowed_mentions=NO_MENTIONS,
        )
        for session in sessions:
            self._request_turn(channel, session, greeting=True)

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
        member, channel = self._member_and_channel(interaction)
        active = self.sessions.get(channel.id, [])
        if persona is not None:
            chosen = await resolve_persona(self.bot.personas, member.guild.id, persona)
            active = [s for s in active if s.persona_id == chosen.id]
            if not active:
                raise UserFacingError(f"{chosen.name} is not speaking here.")
        if not active:
            raise UserFacingError("No persona is speaking here.")
        guild_settings = await self.store.guild_settings(member.guild.id)
        allowed = [s for s in active if s.started_by == member.id or self._is_starter(member, guild_settings)]
        if not allowed:
            raise UserFacingError(
                "Only whoever started a persona here, or a member who may start roleplay, can stop it."
            )
        for session in allowed:
            await self.store.end(session.id, now=wall_clock(), reason=f"stopped by {member.id}")
            self._forget_session(session)
        names = ", ".join(f"**{discord.utils.escape_markdown(s.persona_name)}**" for s in allowed)
        await interaction.response.send_message(f"👋 {names} left {channel.mention}.", allowed_mentions=NO_MENTIONS)

    @stop.autocomplete("persona")
    async def _stop_autocomplete(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        channel_id = interaction.channel_id or 0
        key = typed.casefold()
        return [
            app_commands.Choice(name=s.persona_name[:100], value=s.persona_name[:100])
            for s in self.sessions.get(channel_id, [])
            if key in s.persona_name.casefold()
        ][:25]

    @app_commands.command(name="status")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction) -> None:
        """Who is speaking in this channel, since when, in which mode, started by whom."""
        _, channel = self._member_and_channel(interaction)
        active = self.sessions.get(channel.id, [])
        if not active:
            await interaction.response.send_message(
                "No persona is speaking here. Start one with `/roleplay as`.", ephemeral=True
            )
            return
        lines = [
            f"• **{discord.utils.escape_markdown(s.persona_name)}**: since <t:{int(s.started_at)}:R>, "
            f"{s.mode} mode, started by <@{s.started_by}>"
            for s in active
        ]
        await interaction.response.send_message("\n".join(lines), ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="role")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(role="Members with this role may start roleplay; leave out for Manage Server only")
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        """Choose who may start roleplay in this server (admins)."""
        member, _ = self._member_and_channel(interaction)
        if not can_manage(member):
            raise UserFacingError("Only members with Manage Server can change who may start roleplay.")
        current = await self.store.guild_settings(member.guild.id)
        await self.store.save_guild_settings(
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
        member, _ = self._member_and_channel(interaction)
        if not can_manage(member):
            raise UserFacingError("Only members with Manage Server can choose roleplay channels.")
        current = await self.store.guild_settings(member.guild.id)
        channels = set(current.allowed_channels or ())
        (channels.add if allowed else channels.discard)(channel.id)
        await self.store.save_guild_settings(
            member.guild.id, GuildRoleplaySettings(current.starter_role_id, tuple(sorted(channels)) or None)
        )
        where = ", ".join(f"<#{c}>" for c in sorted(channels)) if channels else "every channel"
        await interaction.response.send_message(f"Roleplay is now allowed in {where}.", ephemeral=True)

    # --- Checks ---------------------------------------------------------------------------------

    def _member_and_channel(self, interaction: discord.Interaction) -> tuple[discord.Member, Speakable]:
        member, channel = interaction.user, interaction.channel
        if not isinstance(member, discord.Member) or not isinstance(channel, discord.TextChannel | discord.Thread):
            raise UserFacingError("Roleplay happens in a server's text channels and threads.")
        return member, channel

    def _is_starter(self, member: discord.Member, settings: GuildRoleplaySettings) -> bool:
        if can_manage(member):
            return True
        return settings.starter_role_id is not None and any(r.id == settings.starter_role_id for r in member.roles)

    def _check_may_start(self, member: discord.Member, channel: Speakable, settings: GuildRoleplaySettings) -> None:
        if not self._is_starter(member, settings):
            role = f" or the <@&{settings.starter_role_id}> role" if settings.starter_role_id else ""
            raise UserFacingError(f"Starting roleplay needs the Manage Server permission{role}.")
        home = channel.parent_id if isinstance(channel, discord.Thread) else channel.id
        if settings.allowed_channels is not None and home not in settings.allowed_channels:
            where = ", ".join(f"<#{c}>" for c in settings.allowed_channels)
            raise UserFacingError(f"Roleplay is not allowed in this channel. It is allowed in {where}.")

    # --- Conversation ---------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        sessions = self.sessions.get(message.channel.id)
        if not sessions or not isinstance(message.channel, discord.TextChannel | discord.Thread):
            return
        if message.webhook_id is not None and message.webhook_id == await self._our_webhook_id(message.channel):
            return  # a persona's own words: already in the transcript
        if self.bot.user is not None and message.author.id == self.bot.user.id:
            return
        if message.author.bot and not self.bot.settings.roleplay_answer_other_bots:
            return
        self.activity[message.channel.id] = message.created_at.timestamp()
        if message.channel.id in self.to_read_back:
            self.to_read_back.discard(message.channel.id)
            earlier = await read_back(
                message.channel,
                since=min(s.started_at for s in sessions),
                before=message,
                store=self.store,
                bot_user_id=self.bot.user.id if self.bot.user else 0,
            )
            self.transcripts.extend(message.channel.id, earlier)
        text = message.clean_content
        line = ChannelLine(
            author_name=message.author.display_name, content=text, persona_id=None, author_id=message.author.id
        )
        self.transcripts.add(message.channel.id, line, at=message.created_at.timestamp())
        speaker = self.speaker
        if speaker is None:
            return  # sessions outlived the chat model's settings: nobody can answer until it is back
        reply_to = await self._replied_persona(message)
        mentions_bot = self.bot.user is not None and self.bot.user in message.mentions
        targets = addressed(
            text=text,
            active=[ActivePersona(s.persona_id, s.persona_name, s.mode, s.started_at) for s in sessions],  # type: ignore[arg-type]
            reply_to_persona=reply_to,
            mentions_bot=mentions_bot,
            last_speaker=speaker.last_speaker.get(message.channel.id),
        )
        by_persona = {s.persona_id: s for s in sessions}
        for persona_id in targets:
            self._request_turn(message.channel, by_persona[persona_id])

    async def _our_webhook_id(self, channel: Speakable) -> int | None:
        try:
            return (await self.webhooks.get(channel)).id
        except (UserFacingError, discord.HTTPException):
            return None

    async def _replied_persona(self, message: discord.Message) -> int | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        found = await self.store.persona_of_messages([reference.message_id])
        return found.get(reference.message_id)

    def _request_turn(self, channel: Speakable, session: Session, *, greeting: bool = False) -> None:
        speaker = self.speaker
        persona = self.personas.get(session.persona_id)
        if speaker is None or persona is None:
            return
        others = [s.persona_name for s in self.sessions.get(channel.id, []) if s.persona_id != session.persona_id]

        async def turn() -> None:
            if session.id not in {s.id for s in self.sessions.get(channel.id, [])}:
                return  # stopped while waiting
            await speaker.speak(channel, session, persona.system_prompt, others, greeting=greeting)

        self.turns.request(channel.id, session.persona_id, turn)

    @commands.Cog.listener()
    async def on_persona_deleted(self, persona_id: int) -> None:
        """A deleted persona stops speaking everywhere at once."""
        for sessions in list(self.sessions.values()):
            for session in sessions:
                if session.persona_id == persona_id:
                    await self.store.end(session.id, now=wall_clock(), reason="persona deleted")
                    self._forget_session(session)
        self.personas.pop(persona_id, None)

    # --- Idle sessions --------------------------------------------------------------------------

    @tasks.loop(seconds=60)
    async def expire_idle(self) -> None:
        idle_after = self.bot.settings.roleplay_idle_minutes * 60
        now = wall_clock()
        for sessions in list(self.sessions.values()):
            for session in sessions:
                if now - self.activity.get(session.channel_id, session.last_activity_at) < idle_after:
                    continue
                await self.store.end(session.id, now=now, reason="idle")
                self._forget_session(session)
                channel = self.bot.get_channel(session.channel_id)
                if isinstance(channel, discord.TextChannel | discord.Thread):
                    minutes = round(idle_after / 60)
                    try:
                        await channel.send(
                            f"💤 **{discord.utils.escape_markdown(session.persona_name)}** left: "
                            f"nobody talked with them for {minutes} minutes.",
                            allowed_mentions=NO_MENTIONS,
                        )
                    except discord.HTTPException:
                        log.info("Could not say that %s left channel %s", session.persona_name, channel.id)


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Roleplay(bot))
